"""What one analysis returns, and its JSON form (the keys docs/design.md promises)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class StageAttention:
    """One decoder stage: labels as rows, the modality's elements (words or seconds) as columns.
    `trained` is False when the elements come from an adapter that was never trained (audio before
    training): that attention is computed but means nothing yet; and for a stage of a trained head
    that training never touched (its modality was in none of the training clips): that stage is left
    out, its attention all zero, and adds nothing to the score."""

    name: str
    modality: str
    elements: list[str | float]
    attention: np.ndarray
    trained: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "modality": self.modality,
            "trained": self.trained,
            "elements": [e if isinstance(e, str) else round(float(e), 3) for e in self.elements],
            "attention": np.round(self.attention, 6).tolist(),
        }


@dataclass
class Prediction:
    """Labels with probabilities and logits, the per-stage attention, which modalities
    were used with their prior weights, each modality's contribution to the logits, the
    raw cosine of each label with each modality's pooled CLIP embedding, and warnings."""

    labels: list[str]
    probs: list[float]
    logits: list[float]
    stages: list[StageAttention]
    modalities: list[str]
    missing: list[str]
    prior_weights: dict[str, float]
    contributions: dict[str, list[float]]
    cosines: dict[str, list[float]]
    warnings: list[str] = field(default_factory=list)
    sentiment: float | None = None
    transcript: dict[str, Any] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    frame_times: list[float] = field(default_factory=list)
    frame_similarity: np.ndarray | None = None  # (K, T_v) cosine of each label with each sampled frame
    clip_id: str | None = None  # names the cached analysis, for re-scoring with other labels
    faces: list[dict] | None = None  # per sampled frame: time, box [x, y, w, h] in the upright source frame of
    # `frame_size` [w, h] pixels (None: no face), score; None: no search

    @property
    def top_label(self) -> str:
        return self.labels[int(np.argmax(self.probs))]

    def stage(self, modality: str) -> StageAttention:
        return next(s for s in self.stages if s.modality == modality)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "probs": [round(p, 6) for p in self.probs],
            "logits": [round(x, 6) for x in self.logits],
            "top_label": self.top_label,
            "sentiment": None if self.sentiment is None else round(self.sentiment, 6),
            "modalities": {"used": self.modalities, "missing": self.missing, "prior_weights": self.prior_weights},
            "contributions": {m: [round(x, 6) for x in v] for m, v in self.contributions.items()},
            "cosines": {m: [round(x, 6) for x in v] for m, v in self.cosines.items()},
            "stages": [s.to_dict() for s in self.stages],
            "transcript": self.transcript,
            "faces": self.faces,
            "warnings": self.warnings,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "frame_similarity": None if self.frame_similarity is None else {
                "times": [round(t, 3) for t in self.frame_times],
                "cosines": np.round(self.frame_similarity, 6).tolist(),
            },
            "clip_id": self.clip_id,
        }


def strict_json(data: dict[str, Any]) -> str:
    """`data` as JSON that strict readers accept: Python would write a NaN or an infinity as the bare
    `NaN`/`Infinity` that JSON does not have. Each becomes null, and `non_finite` lists where (so a null
    there reads "not a finite number", not "absent")."""
    places: list[str] = []
    cleaned = _finite_or_null(data, "", places)
    if places:
        cleaned["non_finite"] = places
    return json.dumps(cleaned, ensure_ascii=False, allow_nan=False)


def _finite_or_null(value: Any, place: str, places: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        places.append(place)
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v, f"{place}.{k}" if place else str(k), places) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v, f"{place}[{i}]", places) for i, v in enumerate(value)]
    return value
