"""What an analysis knows about one clip, independent of the labels it is scored against."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from merclip.head.inputs import ClipFeatures
from merclip.head.result import Prediction
from merclip.media.faces import Face
from merclip.media.probe import MediaInfo
from merclip.reading.forwards import Encoded, Encoding
from merclip.speech.transcribe import Transcript


@dataclass
class SampledFrame:
    """A sampled frame as a page shows it: its time, its crop (the face, or the whole frame) and the
    face found there (None: none found, or detection off)."""

    time: float
    crop: np.ndarray
    face: Face | None


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

    def sampled_frames(self) -> list[SampledFrame]:
        """The frames sampled over the clip, with their crops and faces."""
        times = self.features.frame_times or [0.0] * len(self.crops)
        return [SampledFrame(t, crop, face) for t, crop, face in zip(times, self.crops, self.faces)]

    def finish(self, prediction: Prediction, cached: bool) -> Prediction:
        """The model's prediction on this analysis, with what the analysis adds: its clip_id, its
        warnings, the transcript, the faces and the time of each step (or of the cache lookup)."""
        prediction.clip_id = self.key
        prediction.warnings = self.warnings + prediction.warnings
        prediction.transcript = self.transcript.to_dict() if self.transcript else None
        prediction.faces = self.face_records()
        before = {"cache_lookup": self.timings_ms.get("cache_lookup", 0.0)} if cached else dict(self.timings_ms)
        prediction.timings_ms = before | prediction.timings_ms
        return prediction

    def face_records(self) -> list[dict] | None:
        """Each sampled frame's face for the JSON result (None when detection was off): its box in
        pixels of the file's upright picture, whose size `frame_size` gives, whatever size the
        frame was decoded at."""
        if not self.face_detection:
            return None
        times = self.features.frame_times or [0.0] * len(self.faces)
        return [{"time": round(t, 3), "box": None, "score": None, "frame_size": None} | (face.to_dict() if face else {})
                for t, face in zip(times, self.faces)]


@dataclass
class Lookup:
    """A media file checked, its cache key, and its analysis when a cache already holds it."""

    info: MediaInfo
    key: str
    analysis: ClipAnalysis | None


@dataclass
class ClipReading:
    """An analysis before its gathered model forwards: what the CPU work found (its features have
    no text yet, and no vision where the forwards are gathered) and the words CLIP can read."""

    partial: ClipAnalysis
    words: list[str]

    @property
    def features(self) -> ClipFeatures:
        return self.partial.features

    def encoding(self) -> Encoding:
        """What CLIP has to encode: the words, and the crops unless they are encoded already."""
        crops = [] if self.partial.features.vision is not None else list(self.partial.crops)
        return Encoding(crops=crops, words=self.words)

    def analysis(self, encoded: Encoded) -> ClipAnalysis:
        """The whole analysis, with the forwards' features and the time they took."""
        return replace(self.partial, features=encoded.complete(self.partial.features),
                       timings_ms=self.partial.timings_ms | encoded.timings_ms)
