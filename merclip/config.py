"""Everything needed to rebuild a MER-CLIP model; saved as JSON beside the weights."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from merclip.audio_features import AUDIO_FEATURE_DIM
from merclip.clip_loader import DEFAULT_CLIP
from merclip.errors import MerClipError
from merclip.templates import DEFAULT_TEMPLATES, MODALITIES, resolve_templates

CONFIG_FORMAT = "merclip/1"
PRIOR_MODALITIES = ("vision", "text")  # audio has no CLIP tower, hence no CLIP prior


@dataclass
class ModelConfig:
    """The architecture and defaults of one model.

    `embed_dim` is CLIP's joint space; `audio_feature_dim` the width of the acoustic
    features the audio adapter reads; `vision_feature_dim` is set only for datasets that
    ship their own visual features (MMSA's Facet), which then go through a vision
    adapter and have no CLIP prior; `prior_weights` mix the per-modality CLIP priors
    (vision favoured: CLIP was trained on images); `attention_temperature` is the
    initial `tau` of the cosine attention of every stage that reads CLIP's space (words,
    CLIP image embeddings; a stage behind an adapter starts at `merclip.model.ADAPTED_TEMPERATURE`); `attention` False replaces it by the plain
    mean of each stage's elements (the ablation that shows what attention adds; written only
    when False, so older readers still open every other checkpoint).

    `interaction_features` is the width of the readout's interaction features (see
    `merclip.model`; None: `mlp_ratio` x `embed_dim`, read through `interaction_width`); 0 is
    the linear readout of before them, which a checkpoint config without the key loads with
    (and which is written without the key, so older readers still open such a checkpoint).

    `trained_stages` is written by training: the stages (each its decoder stage and the
    adapter, if any, of its modality) that a training batch with their modality reached and
    whose weights training changed (weight decay alone is not training). A stage of a trained
    head that is not listed never saw its modality (e.g. audio, for clips without sound):
    inference leaves it out rather than read a random adapter. None: not recorded (an
    untrained head, or a checkpoint from before the field existed: the whole head counts).
    """

    clip: str = DEFAULT_CLIP
    embed_dim: int = 512
    audio_feature_dim: int = AUDIO_FEATURE_DIM
    vision_feature_dim: int | None = None  # None: CLIP image embeddings; else e.g. Facet features through an adapter
    stage_order: tuple[str, ...] = ("text", "audio", "vision")
    templates: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_TEMPLATES))
    prior_weights: dict[str, float] = field(default_factory=lambda: {"vision": 0.7, "text": 0.3})
    attention_temperature: float = 1 / 0.07
    mlp_ratio: float = 2.0
    interaction_features: int | None = None  # None: mlp_ratio x embed_dim; 0: a linear readout, as before them
    attention: bool = True
    trained_stages: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.stage_order = tuple(self.stage_order)
        if self.trained_stages is not None:
            self.trained_stages = tuple(self.trained_stages)
            if any(m not in self.stage_order for m in self.trained_stages):
                raise MerClipError(f"trained stages {list(self.trained_stages)}: expected stages of "
                                   f"{list(self.stage_order)}")
        if not self.stage_order or len(set(self.stage_order)) != len(self.stage_order) or any(
            m not in MODALITIES for m in self.stage_order
        ):
            raise MerClipError(
                f"stage order {list(self.stage_order)}: expected distinct modalities from {', '.join(MODALITIES)}"
            )
        self.templates = resolve_templates(self.templates)
        unknown = set(self.prior_weights) - set(PRIOR_MODALITIES)
        if unknown or any(not (w >= 0 and math.isfinite(w)) for w in self.prior_weights.values()):
            raise MerClipError(
                f"prior weights {self.prior_weights}: expected non-negative numbers for {', '.join(PRIOR_MODALITIES)}"
            )
        for name in ("embed_dim", "audio_feature_dim", "vision_feature_dim"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise MerClipError(f"model config: {name} must be a positive integer")
        features = self.interaction_features
        if features is not None and (not isinstance(features, int) or isinstance(features, bool) or features < 0):
            raise MerClipError(f"model config: interaction_features must be a whole number, 0 or more (got {features!r})")
        if not isinstance(self.attention, bool):
            raise MerClipError(f"model config: attention must be true or false (got {self.attention!r})")

    @property
    def interaction_width(self) -> int:
        """How many interaction features the readout reads (0: a linear readout)."""
        if self.interaction_features is None:
            return int(self.embed_dim * self.mlp_ratio)
        return self.interaction_features

    @property
    def clip_vision(self) -> bool:
        """Whether the vision stage reads CLIP image embeddings (so video frames can be used)."""
        return self.vision_feature_dim is None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage_order"] = list(self.stage_order)
        if self.trained_stages is None:
            del data["trained_stages"]  # as before the field existed: older readers still open the checkpoint
        else:
            data["trained_stages"] = list(self.trained_stages)
        data["interaction_features"] = self.interaction_width
        if not self.interaction_width:
            del data["interaction_features"]  # the linear readout, as before the field existed
        if self.attention:
            del data["attention"]
        data["templates"] = {m: list(t) for m, t in self.templates.items()}
        return {"format": CONFIG_FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ModelConfig:
        if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
            raise MerClipError(f"{source} is not a MER-CLIP config (expected \"format\": \"{CONFIG_FORMAT}\")")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"format"})
        if unknown:
            raise MerClipError(f"{source} has unknown keys: {', '.join(unknown)}")
        data = {"interaction_features": 0, **data}  # written by every config since; before, the readout was linear
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise MerClipError(f"{source} is invalid: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
