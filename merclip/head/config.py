"""Everything needed to rebuild a MER-CLIP model; saved as JSON beside the weights."""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from merclip.clip.loader import DEFAULT_CLIP
from merclip.errors import MerClipError
from merclip.labels.templates import DEFAULT_TEMPLATES, MODALITIES, resolve_templates
from merclip.media.acoustic_features import AUDIO_FEATURE_DIM

CONFIG_FORMAT = "merclip/1"
PRIOR_MODALITIES = ("vision", "text")  # audio has no CLIP tower, hence no CLIP prior
MAX_WIDTH = 4096  # the widest layer a head may have: CLIP's widest joint space is 1280, datasets' features ~2048
MAX_TEMPERATURE = 1e4  # an attention tau far below float32's overflow of exp(log tau) x a cosine
MAX_PRIOR_WEIGHT = 1e6  # the prior weights are renormalised (only their ratios matter); float32 must hold their sum


@dataclass
class ModelConfig:
    """The architecture and defaults of one model.

    `embed_dim` is CLIP's joint space; `audio_feature_dim` the width of the acoustic
    features the audio adapter reads; `vision_feature_dim` is set only for datasets that
    ship their own visual features (MMSA's Facet), which then go through a vision
    adapter and have no CLIP prior; `prior_weights` mix the per-modality CLIP priors
    (vision favoured: CLIP was trained on images); `attention_temperature` is the
    initial `tau` of the cosine attention of every stage that reads CLIP's space (words,
    CLIP image embeddings; a stage behind an adapter starts at `merclip.head.network.ADAPTED_TEMPERATURE`); `attention` False replaces it by the plain
    mean of each stage's elements (the ablation that shows what attention adds; written only
    when False, so older readers still open every other checkpoint).

    `interaction_features` is the width of the readout's interaction features (see
    `merclip.head.network`; None: `mlp_ratio` x `embed_dim`, read through `interaction_width`); 0 is
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
        """Every field checked before anything is built from it: a config from a stranger's checkpoint
        must not size an allocation, nor put a NaN, an infinity or a wrong type into the head."""
        if not isinstance(self.clip, str) or not self.clip.strip():
            raise MerClipError(f"clip must be a CLIP SPEC such as \"{DEFAULT_CLIP}\" (got {_shown(self.clip)})")
        self.embed_dim = _whole("embed_dim", self.embed_dim, 1)
        self.audio_feature_dim = _whole("audio_feature_dim", self.audio_feature_dim, 1)
        if self.vision_feature_dim is not None:
            self.vision_feature_dim = _whole("vision_feature_dim", self.vision_feature_dim, 1)
        self.stage_order = _stages("stage_order", self.stage_order, MODALITIES)
        if not self.stage_order:
            raise MerClipError(f"stage_order is empty: expected distinct modalities from {', '.join(MODALITIES)}")
        if self.trained_stages is not None:
            self.trained_stages = _stages("trained_stages", self.trained_stages, self.stage_order)
        self.templates = _templates(self.templates)
        if not isinstance(self.prior_weights, dict) or set(self.prior_weights) - set(PRIOR_MODALITIES):
            raise MerClipError(f"prior_weights must map {' and '.join(PRIOR_MODALITIES)} to weights "
                               f"(got {_shown(self.prior_weights)})")
        self.prior_weights = {m: _real(f"prior_weights.{m}", w, 0.0, MAX_PRIOR_WEIGHT)
                              for m, w in self.prior_weights.items()}
        self.attention_temperature = _real("attention_temperature", self.attention_temperature, 0.0, MAX_TEMPERATURE,
                                           above_low=True)
        self.mlp_ratio = _real("mlp_ratio", self.mlp_ratio, 0.0, MAX_WIDTH / self.embed_dim, above_low=True)
        if int(self.embed_dim * self.mlp_ratio) < 1:
            raise MerClipError(f"mlp_ratio {self.mlp_ratio!r} x embed_dim {self.embed_dim} leaves the stages' MLP "
                               "no hidden unit")
        if self.interaction_features is not None:
            self.interaction_features = _whole("interaction_features", self.interaction_features, 0)
        if not isinstance(self.attention, bool):
            raise MerClipError(f"attention must be true or false (got {_shown(self.attention)})")

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
        except MerClipError as exc:
            raise MerClipError(f"{source}: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _whole(name: str, value: Any, low: int, high: int = MAX_WIDTH) -> int:
    """`value` as an int within [low, high]; a bool, a float or a string is refused, not converted."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not low <= value <= high:
        raise MerClipError(f"{name} must be a whole number from {low} to {high} (got {_shown(value)})")
    return int(value)


def _real(name: str, value: Any, low: float, high: float, above_low: bool = False) -> float:
    """`value` as a finite float within [low, high] (above `low`, with `above_low`)."""
    if (not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value)
            or not low <= value <= high or (above_low and value == low)):
        bounds = f"above {low:g} and at most {high:g}" if above_low else f"from {low:g} to {high:g}"
        raise MerClipError(f"{name} must be a number {bounds} (got {_shown(value)})")
    return float(value)


def _stages(name: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """Distinct names from `allowed`, given as a list."""
    if (not isinstance(value, (list, tuple)) or any(not isinstance(m, str) or m not in allowed for m in value)
            or len(set(value)) != len(value)):
        raise MerClipError(f"{name} {_shown(value)}: expected distinct modalities from {', '.join(allowed)}")
    return tuple(value)


def _templates(value: Any) -> dict[str, tuple[str, ...]]:
    """Each modality's templates, a list of strings each: checked as the user's own templates are."""
    if not isinstance(value, dict) or any(
        not isinstance(t, (list, tuple)) or any(not isinstance(x, str) for x in t) for t in value.values()
    ):
        raise MerClipError(f"templates must map modalities to lists of strings (got {_shown(value)})")
    try:
        return resolve_templates(value)
    except MerClipError as exc:
        raise MerClipError(f"templates: {exc}") from exc


def _shown(value: Any) -> str:
    """A stranger's value in one of our messages: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
