"""Decode a file's audio track to 16 kHz mono with PyAV (no system ffmpeg needed)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.probe import MediaInfo, media_origin, open_container

SILENCE_RMS = 10 ** (-50 / 20)  # -50 dBFS: quieter than any speech worth transcribing


def decode_audio(info: MediaInfo, max_seconds: float) -> tuple[np.ndarray | None, list[str]]:
    """The first `max_seconds` of audio as float32 at 16 kHz, or None with a warning when there is none."""
    if not info.has_audio:
        return None, ["the file has no audio track: audio and speech are not analysed"]
    waveform, complete = read_waveform(info.path, max_seconds)
    warnings = [] if complete else [
        f"the audio track is damaged after {len(waveform) / SAMPLE_RATE:.1f} s; only the part before was analysed"
    ]
    if len(waveform) == 0:
        return None, ["the audio track could not be decoded: audio and speech are not analysed"]
    return waveform, warnings


def read_waveform(path: str | Path, max_seconds: float) -> tuple[np.ndarray, bool]:
    """Decode and resample the first audio stream, the first `max_seconds` of the file; False when
    decoding stopped at damaged data.

    Sample 0 is the file's time 0 (`media_origin`), where frame times start too: a sound track that
    starts later than the file (a camera's, 1.9 s in) is preceded by as much silence, so audio
    feature and word times are times in the file.
    """
    limit = int(max_seconds * SAMPLE_RATE)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks, total, complete = [], 0, True
    try:
        with open_container(path) as container:
            origin = media_origin(container)
            for index, frame in enumerate(container.decode(audio=0)):
                if index == 0 and frame.time is not None:  # silence from the file's start to the sound's
                    delay = round((frame.time - origin) * SAMPLE_RATE)
                    chunks.append(np.zeros(min(limit, max(0, delay)), np.float32))
                    total = len(chunks[0])
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += len(chunks[-1])
                if total >= limit:
                    break
    except (av.error.FFmpegError, ValueError):
        complete = False
    waveform = np.concatenate(chunks)[:limit] if chunks else np.zeros(0)
    return waveform.astype(np.float32), complete


def is_silent(waveform: np.ndarray) -> bool:
    """True when no 50 ms stretch of the track is louder than -50 dBFS."""
    hop = SAMPLE_RATE // 20
    frames = waveform[: len(waveform) // hop * hop].reshape(-1, hop) if len(waveform) >= hop else waveform[None]
    loudest = float(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).max())
    return loudest < SILENCE_RMS
