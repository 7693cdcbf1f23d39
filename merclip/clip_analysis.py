"""What an analysis knows about one clip, independent of the labels it is scored against."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from merclip.faces import Face
from merclip.features import ClipFeatures
from merclip.media_probe import MediaInfo
from merclip.transcribe import Transcript


@dataclass
class ClipAnalysis:
    """Model inputs plus what the UI shows: face crops, the face found in each frame, the transcript."""

    info: MediaInfo
    features: ClipFeatures
    crops: list[np.ndarray]
    faces: list[Face | None]  # per sampled frame; all None when face detection was off
    face_detection: bool
    transcript: Transcript | None
    warnings: list[str]
    timings_ms: dict[str, float] = field(default_factory=dict)
    key: str = ""  # the cache key: content hash + analysis options + models (the API's clip_id)

    def face_records(self) -> list[dict] | None:
        """Each sampled frame's face for the JSON result (None when detection was off)."""
        if not self.face_detection:
            return None
        times = self.features.frame_times or [0.0] * len(self.faces)
        return [{"time": round(t, 3), "box": None, "score": None} | (face.to_dict() if face else {})
                for t, face in zip(times, self.faces)]
