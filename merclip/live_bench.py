"""Live mode's benchmark figures: frames scored per second, latency, a label change, memory over a long stream.

Frames are 640 x 480 camera frames of a real face moving, scored by one `LiveSession` as the
page's stream handler scores them: one at a time, a new one as soon as the last is done,
never faster than the camera sends them (every `LIVE_FRAME_SECONDS`).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from merclip.analysis import Analyzer
from merclip.live import LiveSession
from merclip.sample_media import face_frames

LABELS = "happy, sad, angry, surprised, fearful, disgusted, neutral"
NEW_LABELS = "calm, tense, bored, amused, proud, shy, curious"
CAMERA_FRAME_SECONDS = 0.1  # as the page's stream asks the browser
MEMORY_FRAME_SECONDS = 0.2  # the long stream's own clock: 5 frames per stream second


def camera_frames(count: int) -> list[np.ndarray]:
    """640 x 480 frames with a real face panning and zooming in the middle."""
    frames = []
    for face in face_frames(count, 480):
        canvas = np.full((480, 640, 3), 40, np.uint8)
        canvas[:, 80:560] = face
        frames.append(canvas)
    return frames


def live_figures(analyzer: Analyzer, seconds: float = 30.0, memory_seconds: float = 300.0) -> dict:
    """Frames per second and p50/p95 latency over `seconds` of streaming (labels changed halfway, and
    how long until a frame shows the new ones), and resident memory over `memory_seconds` of stream."""
    frames = camera_frames(16)
    session = LiveSession(analyzer, LABELS)
    session.set_labels(NEW_LABELS)
    session.offer(frames[0], at=0.0)  # both label sets encoded once, as a visitor who typed them before
    session.set_labels(LABELS)
    latencies, scored, change_ms = [], 0, None
    changed_at = None
    started = time.perf_counter()
    next_frame = started
    while (now := time.perf_counter()) - started < seconds:
        time.sleep(max(0.0, next_frame - now))
        next_frame = max(next_frame + CAMERA_FRAME_SECONDS, time.perf_counter())
        if changed_at is None and time.perf_counter() - started > seconds / 2:
            changed_at = time.perf_counter()
            session.set_labels(NEW_LABELS)
        reading = session.offer(frames[scored % len(frames)], at=time.perf_counter() - started)
        scored += 1
        latencies.append(reading.latency_ms)
        if changed_at is not None and change_ms is None and reading.labels == NEW_LABELS.split(", "):
            change_ms = (time.perf_counter() - changed_at) * 1000
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "seconds": round(elapsed, 1), "frames_scored": scored, "labels": len(LABELS.split(", ")),
        "frames_per_second": round(scored / elapsed, 2),
        "latency_p50_ms": round(statistics.median(ordered), 1),
        "latency_p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "label_change_ms": None if change_ms is None else round(change_ms, 1),
        **_memory_over_stream(analyzer, frames, memory_seconds),
    }


def _memory_over_stream(analyzer: Analyzer, frames: list[np.ndarray], seconds: float) -> dict:
    """Resident memory of a stream of `seconds` (on its own clock, frames back to back) after its first
    minute, when every buffer is full, and at its end."""
    session = LiveSession(analyzer, LABELS)
    at, index, settled = 0.0, 0, None
    while at < seconds:
        session.offer(frames[index % len(frames)], at=at)
        if settled is None and at >= min(60.0, seconds / 2):
            settled = resident_mb()
        at += MEMORY_FRAME_SECONDS
        index += 1
    end = resident_mb()
    return {"stream_seconds": seconds, "rss_mb_after_60s": round(settled, 1), "rss_mb_at_end": round(end, 1),
            "rss_growth": round(end / settled - 1, 4)}


def resident_mb() -> float:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmRSS:"))) / 1024
