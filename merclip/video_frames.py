"""Sample N frames spread over a clip by seeking, so memory never holds more than N frames.

Frames are turned upright (rotation metadata from phones) and downscaled so the
longest side is at most `max_side` before anything else looks at them.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageOps

from merclip.errors import MerClipError
from merclip.limits import Limits
from merclip.media_probe import MediaInfo


@dataclass
class SampledFrame:
    time: float
    image: np.ndarray  # (H, W, 3) uint8 RGB, upright


def sample_frames(info: MediaInfo, limits: Limits) -> tuple[list[SampledFrame], list[str]]:
    """The frames at the centres of `limits.frames` equal slices of the analysed span, and warnings."""
    if info.kind == "image":
        with Image.open(info.path) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
        upright.thumbnail((limits.max_side, limits.max_side))
        return [SampledFrame(0.0, np.asarray(upright))], []
    span = min(info.duration, limits.max_seconds)
    times = [(i + 0.5) * span / limits.frames for i in range(limits.frames)] if span > 0 else [0.0]
    frames, failed = [], []
    seen: set[int] = set()
    with av.open(str(info.path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for target in times:
            try:
                frame = _frame_at(container, stream, target)
            except (av.error.FFmpegError, ValueError):
                frame = None
            if frame is None:
                failed.append(target)
                continue
            if frame.pts in seen:  # a clip with fewer frames than samples: keep each frame once
                continue
            seen.add(frame.pts)
            frames.append(SampledFrame(float(frame.time or 0.0), _upright_rgb(frame, limits.max_side)))
    if not frames:
        raise MerClipError(f"{info.path.name}: no video frame could be decoded (the file may be truncated or corrupt)")
    warnings = []
    if failed:
        warnings.append(
            f"{len(failed)} of {len(times)} sampled frames could not be decoded (from {failed[0]:.1f} s); "
            "the file may be truncated"
        )
    return frames, warnings


def _frame_at(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
              target: float) -> av.VideoFrame | None:
    """The first frame at or after `target` seconds (or the last frame before the end)."""
    start = stream.start_time or 0
    container.seek(start + int(target / stream.time_base), stream=stream, backward=True)
    last = None
    for frame in container.decode(stream):
        last = frame
        if frame.time is not None and frame.time >= target:
            break
    return last


def _upright_rgb(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    scale = min(1.0, max_side / max(frame.width, frame.height))
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=quarter_turns)) if quarter_turns else rgb
