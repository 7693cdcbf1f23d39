"""Bounds on what one analysis will take on, with the defaults users see in --help."""

from __future__ import annotations

from dataclasses import dataclass, field

from merclip.errors import MerClipError


@dataclass(frozen=True)
class Limits:
    """max_file_mb: larger uploads are refused; max_seconds: only the start of longer
    clips is analysed (with a warning); frames: how many video frames are sampled;
    max_side: frames are downscaled to this longest side before face detection;
    deadline_seconds: an analysis still running after this long is stopped with an error
    (it does not change what an analysis computes, so it is not part of the cache key)."""

    max_file_mb: float = 200.0
    max_seconds: float = 120.0
    frames: int = 8
    max_frames: int = 32
    max_side: int = 1280
    deadline_seconds: float = field(default=600.0, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= self.max_frames:
            raise MerClipError(f"frames must be between 1 and {self.max_frames}, got {self.frames}")
        if self.max_seconds <= 0 or self.max_file_mb <= 0 or self.deadline_seconds <= 0:
            raise MerClipError("the duration, file size and time limits must be positive")
