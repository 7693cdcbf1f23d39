"""Sample N frames spread over a clip by seeking, so memory never holds more than N frames.

Frames are turned upright (rotation metadata from phones) and downscaled so the
longest side is at most `max_side` before anything else looks at them; each keeps the
size of its upright picture at the file's full resolution: face boxes are reported in
those pixels, whatever size the frame was decoded at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageOps

from merclip.errors import MerClipError
from merclip.limits import Limits
from merclip.media.probe import MediaInfo, media_origin, open_container, stream_delay


@dataclass
class SampledFrame:
    time: float
    image: np.ndarray  # (H, W, 3) uint8 RGB, upright, downscaled to `max_side`
    source_size: tuple[int, int]  # width, height of the upright picture at the file's own resolution


def sample_frames(info: MediaInfo, limits: Limits, check: Callable[[], None] = lambda: None
                  ) -> tuple[list[SampledFrame], list[str]]:
    """The frames at the centres of `limits.frames` equal slices of the analysed span, and warnings;
    `check` is called before each frame (it raises to stop a run past its deadline)."""
    if info.kind == "image":
        with Image.open(info.path) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
        source_size = upright.size
        return [SampledFrame(0.0, within_side(upright, limits.max_side), source_size)], []
    span = min(info.duration, limits.max_seconds)
    with open_container(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first = stream_delay(container, stream)  # pictures that start after the sound are sampled from their start
        times = _centres(first, span, limits.frames)
        frames, failed, end = _frames_at(container, stream, times, limits.max_side, check)
        warnings = []
        if frames and len(times) > 1 and end < times[-1] - (span - first) / limits.frames:
            # the header claims more than the file holds (a forged or broken duration, or a
            # picture track shorter than the sound): sample the pictures there are instead
            warnings.append(f"the file says it lasts {info.duration:.0f} s but its pictures end at {end:.1f} s: "
                            "frames were sampled up to there")
            times = _centres(first, end, limits.frames)
            frames, failed, _ = _frames_at(container, stream, times, limits.max_side, check)
    if not frames:
        raise MerClipError(f"{info.path.name}: no video frame could be decoded (the file may be truncated or corrupt)")
    if len(frames) < len(times) - len(failed):
        warnings.append(f"the clip shows only {len(frames)} different pictures at the {len(times)} sampled times: "
                        f"{len(frames)} frames were used")
    if failed:
        warnings.append(
            f"{len(failed)} of {len(times)} sampled frames could not be decoded (from {failed[0]:.1f} s); "
            "the file may be truncated"
        )
    return frames, warnings


def within_side(picture: Image.Image, max_side: int) -> np.ndarray:
    """A still picture's RGB pixels, downscaled in place (PIL's thumbnail) so its longest side is at most
    `max_side`. Live camera frames go through this too, so a frame scores the same live as in a file."""
    picture.thumbnail((max_side, max_side))
    return np.asarray(picture)


def frames_at(info: MediaInfo, times: list[float], limits: Limits) -> list[SampledFrame]:
    """The frames on screen at given media times (each distinct frame once)."""
    with open_container(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return _frames_at(container, stream, times, limits.max_side, lambda: None)[0]


def _centres(start: float, end: float, count: int) -> list[float]:
    """The centres of `count` equal slices of [start, end]."""
    return [start + (i + 0.5) * (end - start) / count for i in range(count)] if end > start else [start]


def _frames_at(container: av.container.InputContainer, stream: av.video.stream.VideoStream, times: list[float],
               max_side: int, check: Callable[[], None]) -> tuple[list[SampledFrame], list[float], float]:
    """The frame on screen at each time (each distinct frame once), the times that could not be
    decoded, and when the last frame seen stops being shown (its time plus its duration).

    Times are media times: seconds from the start of the file, the axis the audio and the words
    are on, whatever time the container's first timestamp says (an MKV or MPEG-TS may start at 5 s).
    """
    frames, failed, end = [], [], 0.0
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    origin = media_origin(container)
    stream_start = origin + stream_delay(container, stream)
    seen: set[int] = set()
    for target in times:
        check()
        try:
            frame = _frame_on_screen(container, stream, origin + target, stream_start)
        except (av.error.FFmpegError, ValueError):
            frame = None
        if frame is None:
            failed.append(target)
            continue
        if frame.pts in seen:  # a clip with fewer frames than samples: keep each frame once
            continue
        seen.add(frame.pts)
        frames.append(SampledFrame(max(0.0, float(frame.time) - origin), *_upright_rgb(frame, max_side)))
        shown = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 1 / rate if rate else 0.0
        end = max(end, frames[-1].time + shown)
    return frames, failed, end


def _frame_on_screen(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                     target: float, stream_start: float) -> av.VideoFrame | None:
    """The frame on screen at `target` (container seconds): the last one starting at or before it,
    or the first frame when the target comes before any. A seek should land on a keyframe at or
    before the target; in MPEG-TS (seeked by byte position) it may land after it, and the
    decoder then starts late: the seek is repeated from further back until it does not."""
    back = 0.0
    while True:
        from_start = target - back < stream_start  # MPEG-TS may land late even when asked for its start
        container.seek(0 if from_start else int((target - back) / stream.time_base), stream=stream, backward=True)
        shown = first = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if first is None:
                first = frame
            if frame.time > target + 1e-6:
                break
            shown = frame
        if shown is not None or from_start:
            return shown if shown is not None else first
        back = max(1.0, 2 * back)


def _upright_rgb(frame: av.VideoFrame, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The frame as upright RGB at most `max_side` large, and its upright size at full resolution."""
    scale = min(1.0, max_side / max(frame.width, frame.height))
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    size = (frame.height, frame.width) if quarter_turns % 2 else (frame.width, frame.height)
    return (np.ascontiguousarray(np.rot90(rgb, k=quarter_turns)) if quarter_turns else rgb), size
