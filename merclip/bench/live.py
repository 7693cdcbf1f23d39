"""Live mode's benchmark figures: frames scored per second, latency, a label change, memory over a long stream,
and with the microphone on, how soon a sentence's words arrive and the frame rate while Whisper runs.

Frames are 640 x 480 camera frames of a real face moving, scored by one `LiveSession` as the
page's stream handler scores them: one at a time, a new one as soon as the last is done,
never faster than the camera sends them (every `LIVE_FRAME_SECONDS`).
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time

import librosa
import numpy as np

from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.sample_media import SPEECH_FILES, SPEECH_TEXT, face_frames, recordings
from merclip.reading.analyzer import Analyzer
from merclip.reading.live import LiveSession
from merclip.speech.live_hearing import WhisperWorker, live_recognizer, prepare_live_recognizer

LABELS = "happy, sad, angry, surprised, fearful, disgusted, neutral"
NEW_LABELS = "calm, tense, bored, amused, proud, shy, curious"
CAMERA_FRAME_SECONDS = 0.1  # as the page's stream asks the browser
MEMORY_FRAME_SECONDS = 0.2  # the long stream's own clock: 5 frames per stream second
MICROPHONE_CHUNK_SECONDS = 0.5  # as the page's microphone stream sends it
SENTENCE_GAP_SECONDS = 1.0  # the speaker's pause after each recording
BROWSER_CHUNK_SECONDS, BROWSER_RATE = 0.1, 48000  # what Chromium's microphone stream sends (measured, gradio 6.31)


def camera_frames(count: int) -> list[np.ndarray]:
    """640 x 480 frames with a real face panning and zooming in the middle."""
    frames = []
    for face in face_frames(count, 480):
        canvas = np.full((480, 640, 3), 40, np.uint8)
        canvas[:, 80:560] = face
        frames.append(canvas)
    return frames


def live_figures(analyzer: Analyzer, seconds: float = 30.0, memory_seconds: float = 300.0,
                 microphone_seconds: float = 30.0) -> dict:
    """Frames per second and p50/p95 latency over `seconds` of streaming (labels changed halfway, and
    how long until a frame shows the new ones), resident memory over `memory_seconds` of stream, and
    the microphone's figures over `microphone_seconds` of speech (None without Whisper)."""
    frames = camera_frames(16)
    session = LiveSession(analyzer, LABELS)
    session.set_labels(NEW_LABELS)
    session.offer(frames[0], at=0.0)  # both label sets encoded once, as a visitor who typed them before
    session.set_labels(LABELS)
    latencies, scored, change_ms = [], 0, None
    changed_at = None
    started = time.perf_counter()
    next_frame = started
    # until `seconds` have passed and a frame after the change was scored (a slow host may score only a few)
    while (now := time.perf_counter()) - started < seconds or change_ms is None:
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
        "microphone": microphone_figures(analyzer, frames, microphone_seconds) if analyzer.recognizer else None,
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


def microphone_figures(analyzer: Analyzer, frames: list[np.ndarray], seconds: float) -> dict:
    """The built-in sentences spoken at real-time pace into the microphone (0.5 s chunks, a pause after
    each) while the camera streams: from the end of each sentence to its last word in the transcript,
    p50/p95, and the frames scored per second while Whisper was transcribing."""
    track, sentences = _spoken(seconds)
    session = LiveSession(analyzer, LABELS)
    busy: list[tuple[float, float]] = []
    recognizer = live_recognizer(analyzer.recognizer)  # what the session transcribes with
    transcribe = recognizer.transcribe
    transcribe(np.zeros(SAMPLE_RATE, np.float32))  # loaded, as on a server that is up

    def timed_transcribe(*args, **kwargs):
        began = time.perf_counter() - started
        try:
            return transcribe(*args, **kwargs)
        finally:
            busy.append((began, time.perf_counter() - started))

    recognizer.transcribe = timed_transcribe  # this session's Whisper calls, timed (the instance's own, undone below)
    started = time.perf_counter()
    speaker = threading.Thread(target=_speak, args=(session, track, started), daemon=True)
    try:
        speaker.start()
        scored, heard_at = _stream_and_watch(session, frames, started, len(track) / SAMPLE_RATE + 2.0, sentences)
        speaker.join()
    finally:
        del recognizer.transcribe
    latencies = sorted(heard_at[i] - end for i, (end, _) in enumerate(sentences) if i in heard_at)
    while_busy = [at for at in scored if any(a <= at < b for a, b in busy)]
    busy_seconds = sum(b - a for a, b in busy)
    return {
        **first_words_figures(analyzer, frames),
        "sentences": len(sentences), "sentences_heard": len(latencies),
        "words_after_sentence_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "words_after_sentence_p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 2)
        if latencies else None,
        "transcriptions": len(busy), "transcribing_seconds": round(busy_seconds, 1),
        "frames_per_second_while_transcribing": round(len(while_busy) / busy_seconds, 2) if busy_seconds else None,
    }


def first_words_figures(analyzer: Analyzer, frames: list[np.ndarray], tries: int = 3) -> dict:
    """Seconds from a new session's first microphone chunk (a sentence starts with it) to the first words in
    its transcript, while the camera streams: with live Whisper started ahead, as the page starts it, and cold,
    started by that first chunk (as it was). Chunks as Chromium sends them: 0.1 s of 48 kHz int16 each."""
    recognizer = live_recognizer(analyzer.recognizer)
    track, _ = _spoken(6.0)
    ready, cold = [], []
    for _ in range(tries):
        prepare_live_recognizer(analyzer.recognizer)
        ready.append(_first_words(analyzer, frames, track))
        if isinstance(recognizer, WhisperWorker):
            recognizer.close()
            cold.append(_first_words(analyzer, frames, track))
    prepare_live_recognizer(analyzer.recognizer)
    return {"first_words_after_record_s": _median(ready), "first_words_cold_whisper_s": _median(cold),
            "first_words_tries_s": [None if t is None else round(t, 2) for t in ready]}


def _median(values: list[float | None]) -> float | None:
    """The median, a try without words counting as the slowest (None when none heard)."""
    middle = statistics.median([float("inf") if v is None else v for v in values]) if values else float("inf")
    return None if middle == float("inf") else round(middle, 2)


def _first_words(analyzer: Analyzer, frames: list[np.ndarray], track: np.ndarray) -> float | None:
    """One session: the camera streaming, the track spoken from its start; None if no words came in time."""
    session = LiveSession(analyzer, LABELS)
    started = time.perf_counter()
    speaker = threading.Thread(target=_speak, args=(session, track, started, BROWSER_CHUNK_SECONDS, BROWSER_RATE),
                               daemon=True)
    speaker.start()
    heard_at = None
    while heard_at is None and (now := time.perf_counter()) - started < len(track) / SAMPLE_RATE + 10:
        session.offer(frames[int(now / CAMERA_FRAME_SECONDS) % len(frames)], at=now - started)
        time.sleep(max(0.0, CAMERA_FRAME_SECONDS - (time.perf_counter() - now)))
        if session.transcript:
            heard_at = time.perf_counter() - started
    speaker.join()
    session.settle(60)
    return None if heard_at is None else heard_at - BROWSER_CHUNK_SECONDS  # from the first chunk's arrival


def _spoken(seconds: float) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """The built-in recordings one after another, each followed by a pause, for about `seconds`:
    the track and each sentence's (end in seconds, last word)."""
    gap = np.zeros(int(SENTENCE_GAP_SECONDS * SAMPLE_RATE), np.float32)
    parts, sentences, length = [], [], 0
    for name, recording in itertools.cycle(zip(SPEECH_FILES, recordings(SPEECH_FILES))):
        if parts and length + len(recording) > seconds * SAMPLE_RATE:
            break
        parts += [recording, gap]
        length += len(recording) + len(gap)
        sentences.append(((length - len(gap)) / SAMPLE_RATE, _last_word(SPEECH_TEXT[name])))
    return np.concatenate(parts), sentences


def _last_word(text: str) -> str:
    return text.split()[-1].strip(".,?!").lower()


def _speak(session: LiveSession, track: np.ndarray, started: float, chunk_seconds: float = MICROPHONE_CHUNK_SECONDS,
           rate: int = SAMPLE_RATE) -> None:
    """The microphone: each chunk handed over when it has been spoken, as a browser streams it (at `rate`)."""
    sent = track if rate == SAMPLE_RATE else librosa.resample(track, orig_sr=SAMPLE_RATE, target_sr=rate)
    step = int(chunk_seconds * rate)
    for end in range(step, len(sent) + step, step):
        time.sleep(max(0.0, started + end / rate - time.perf_counter()))
        session.hear((np.clip(sent[end - step: end], -1, 1) * 32767).astype(np.int16), rate,
                     at=time.perf_counter() - started)


def _stream_and_watch(session: LiveSession, frames: list[np.ndarray], started: float, seconds: float,
                      sentences: list[tuple[float, str]]) -> tuple[list[float], dict[int, float]]:
    """The camera for `seconds`, watching the transcript between frames: the times frames were scored,
    and when each sentence's last word arrived."""
    scored, heard_at, next_frame = [], {}, started
    # until `seconds` have passed and a frame after the change was scored (a slow host may score only a few)
    while (now := time.perf_counter()) - started < seconds or change_ms is None:
        time.sleep(max(0.0, next_frame - now))
        next_frame = max(next_frame + CAMERA_FRAME_SECONDS, time.perf_counter())
        at = time.perf_counter() - started
        session.offer(frames[len(scored) % len(frames)], at=at)
        scored.append(at)
        said = [_last_word(w) for w in list(session.transcript)]
        for word in {w for _, w in sentences}:
            for _ in range(said.count(word) - sum(sentences[i][1] == word for i in heard_at)):
                _credit(sentences, heard_at, word, time.perf_counter() - started)
    return scored, heard_at


def _credit(sentences: list[tuple[float, str]], heard_at: dict[int, float], word: str, now: float) -> None:
    """A sentence's last word just arrived: it is the latest such sentence said by now (an earlier one
    whose word never came was missed, not late)."""
    said = [i for i, (end, w) in enumerate(sentences) if w == word and end <= now and i not in heard_at]
    if said:
        heard_at[said[-1]] = now


def resident_mb() -> float:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmRSS:"))) / 1024
