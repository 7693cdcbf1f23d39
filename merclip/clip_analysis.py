"""What an analysis knows about one clip, independent of the labels it is scored against."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from merclip.features import ClipFeatures
from merclip.media_probe import MediaInfo
from merclip.transcribe import Transcript


@dataclass
class ClipAnalysis:
    """Model inputs plus what the UI shows: face crops, whether a face was found, the transcript."""

    info: MediaInfo
    features: ClipFeatures
    crops: list[np.ndarray]
    faces_found: list[bool]
    transcript: Transcript | None
    warnings: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)
    key: str = ""  # the cache key: content hash + analysis options + models (the API's clip_id)
