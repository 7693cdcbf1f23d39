"""The Python API: load a model, turn inputs into features, score them against labels.

    from merclip import load_model
    model = load_model("ViT-B-32:openai")            # or checkpoint="runs/mosi"
    features = model.features(images=[face], transcript="I love this")
    result = model.score(features, "happy, sad|unhappy, neutral")
    result.top_label, result.probs, result.stages[0].attention
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from warnings import warn

import numpy as np
import torch
from PIL import Image

from merclip.clip.image_features import encode_images
from merclip.clip.loader import DEFAULT_CLIP, RANDOM_SEED, ClipBundle, load_clip
from merclip.clip.word_features import TextFeatures, encode_transcript, sentence_features
from merclip.errors import MerClipError
from merclip.head.checkpoint import load_weights, read_checkpoint, save_checkpoint
from merclip.head.config import ModelConfig
from merclip.head.inputs import ClipFeatures, batch_of
from merclip.head.network import HeadOutput, MerClipHead
from merclip.head.prepared import PreparedBatch, PreparedClips, length_buckets
from merclip.head.result import Prediction, StageAttention
from merclip.labels.encoder import LabelEncoder
from merclip.labels.parsing import LabelSet, parse_labels
from merclip.labels.templates import MODALITIES, resolve_templates

# Raised whenever what an analysis caches changes meaning, so caches on disk from before are not read.
FEATURES_VERSION = 3
T = TypeVar("T")
RANDOM_WEIGHTS_WARNING = "CLIP has random weights (a plumbing run): the predictions are meaningless"


@dataclass(frozen=True)
class ForwardCost:
    """What one call's forwards weigh: crops through the image tower, rows through the text tower
    (transcript windows, sentences, label prompts), clips through the head."""

    images: int = 0
    text_rows: int = 0
    clips: int = 0


class MerClip:
    """A frozen CLIP, the trainable MER-CLIP head and a label-embedding cache, on one device."""

    def __init__(self, clip: ClipBundle, head: MerClipHead) -> None:
        self.clip = clip
        self.fingerprint = _fingerprint(clip, head)  # read here, before the head may go where it cannot be read
        self.head = head.to(clip.device).eval()
        self.config = head.config
        self.labels = LabelEncoder(clip)

    @property
    def device(self) -> torch.device:
        return self.clip.device

    def encode_images(self, images: Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
        return encode_images(self.clip, images)

    def encode_transcript(self, text: str) -> TextFeatures | None:
        return encode_transcript(self.clip, text)

    def encode_sentences(self, words: Sequence[str], groups: Sequence[Sequence[int]]) -> torch.Tensor:
        """(G, d) sentence embeddings of groups of words (the utterances of a clip), one CLIP batch."""
        return sentence_features(self.clip, words, groups)

    forwards_gathered = False  # whether an analysis should leave every forward for one `run` call

    def run(self, forwards: Callable[..., T], *args: Any, cost: ForwardCost) -> T:
        """`forwards(self, *args)`: every model forward of one user action (see merclip/reading/forwards.py).
        Here it simply runs; a host that lends its GPU per call runs it in one call sized by `cost`."""
        return forwards(self, *args)

    def features(self, images: Sequence[Image.Image | np.ndarray] | None = None,
                 frame_times: Sequence[float] | None = None, transcript: str | None = None,
                 audio: np.ndarray | torch.Tensor | None = None,
                 audio_times: Sequence[float] | None = None) -> ClipFeatures:
        """Encode whatever is given; what is not given is a missing modality."""
        features = ClipFeatures()
        if images:
            features.vision = self.encode_images(images)
            features.frame_times = list(frame_times) if frame_times is not None else list(range(len(images)))
        text = self.encode_transcript(transcript) if transcript else None
        if text is not None:
            features.text, features.text_pooled, features.words = text.elements, text.pooled, text.words
        if audio is not None and len(audio):
            features.audio = torch.as_tensor(np.asarray(audio), dtype=torch.float32)
            if features.audio.ndim != 2 or features.audio.shape[1] != self.config.audio_feature_dim:
                raise MerClipError(
                    f"audio features must be (frames, {self.config.audio_feature_dim}), got {tuple(features.audio.shape)}"
                )
            features.audio_times = list(audio_times) if audio_times is not None else list(range(len(audio)))
        return features

    def label_embeddings(self, labels: LabelSet, templates: Mapping[str, Sequence[str]]
                         ) -> tuple[dict[str, torch.Tensor], list[str]]:
        """(K, d) embeddings of the labels under each modality's templates (one CLIP batch for all)."""
        return self.labels.encode_sets(labels.labels, {m: templates[m] for m in MODALITIES})

    def score(self, features: ClipFeatures, labels: str | Sequence[str] | LabelSet,
              templates: Mapping[str, str | Sequence[str]] | None = None) -> Prediction:
        """Score one clip's features against labels; templates override the model's per modality."""
        return self.score_many([features], labels, templates)[0]

    def score_many(self, clips: Sequence[ClipFeatures] | PreparedClips, labels: str | Sequence[str] | LabelSet,
                   templates: Mapping[str, str | Sequence[str]] | None = None) -> list[Prediction]:
        """Score several clips (e.g. a video and its utterances): the labels are encoded once and the
        head runs on batches of clips of similar length; each clip keeps its own modalities. Clips
        from `prepare` skip all the work that does not depend on the labels."""
        label_set = parse_labels(labels)
        template_sets = resolve_templates(templates, base=self.config.templates)
        prepared = clips if isinstance(clips, PreparedClips) else self.prepare(clips, project=False)
        started = time.perf_counter()
        embeddings, label_warnings = self.label_embeddings(label_set, template_sets)
        encoded = time.perf_counter()
        rows: dict[int, tuple[HeadOutput, int]] = {}  # clip index -> (its batch's output, its row there)
        for batch in prepared.batches:
            batch = batch.to(self.device)
            with torch.no_grad():
                out = self.head(batch.inputs, embeddings, self.clip.logit_scale, self.clip.logit_bias, batch.memories)
            for row, index in enumerate(batch.indices):
                rows[index] = (out, row)
        decoded = time.perf_counter()
        trained = self.head.trained  # (a look at every weight: once, not once per stage of every clip)
        left_out = self.untrained_stages()
        predictions = []
        for index, (features, unusable) in enumerate(zip(prepared.clips, prepared.unusable)):
            out, row = rows[index]
            modalities = [m for m in self.config.stage_order if m in features.modalities]
            warnings = list(label_set.warnings) + unusable + label_warnings + self._model_warnings(out, modalities)
            prediction = _prediction(label_set, features, out, row, modalities, self.config.stage_order,
                                     self.clip.logit_scale, warnings)
            for stage in prediction.stages:
                stage.trained = trained or not self.head.has_adapter(stage.modality)
            _add_left_out_stages(prediction, features, left_out, self.config.stage_order)
            if features.vision is not None and self.config.clip_vision:
                vision = features.vision.to(embeddings["vision"])
                prediction.frame_similarity = (embeddings["vision"] @ vision.T).float().cpu().numpy()
                prediction.frame_times = list(features.frame_times)
            prediction.timings_ms = {"label_encoding": (encoded - started) * 1000, "decoder": (decoded - encoded) * 1000}
            predictions.append(prediction)
        return predictions

    def predict(self, *args: Any, **kwargs: Any) -> Prediction:
        """Deprecated: `score` (one release, then gone)."""
        warn("MerClip.predict is now MerClip.score", DeprecationWarning, stacklevel=2)
        return self.score(*args, **kwargs)

    def predict_many(self, *args: Any, **kwargs: Any) -> list[Prediction]:
        """Deprecated: `score_many` (one release, then gone)."""
        warn("MerClip.predict_many is now MerClip.score_many", DeprecationWarning, stacklevel=2)
        return self.score_many(*args, **kwargs)

    def prepare(self, clips: Sequence[ClipFeatures], project: bool = True) -> PreparedClips:
        """Clips checked, batched and, with `project`, run through everything of the head that does not
        depend on the labels (on this model's device), for scoring many label sets."""
        left_out = self.untrained_stages()
        checked = [self._usable(features, left_out) for features in clips]
        for features, warnings in checked:
            if not set(features.modalities) & set(self.config.stage_order):
                if warnings:
                    raise MerClipError("nothing to analyse: " + "; ".join(warnings))
                raise MerClipError("nothing to analyse: the input has no face or frame, no speech and no audio")
        kept = [features for features, _ in checked]
        batches = [PreparedBatch(bucket, batch_of([kept[i] for i in bucket], self.device if project else "cpu"))
                   for bucket in length_buckets(kept)]
        if project:
            with torch.no_grad():
                for batch in batches:
                    batch.memories = self.head.memories(batch.inputs)
        return PreparedClips(kept, [unusable for _, unusable in checked], batches)

    def untrained_stages(self) -> tuple[str, ...]:
        """The stages of a trained head that its training never changed (their modality was in none of
        its training clips), in stage order: inference leaves them out. Empty for an untrained head
        (CLIP zero-shot, every stage as built) and for a checkpoint that does not record its trained
        stages (from before `ModelConfig.trained_stages`): there the whole head counts as trained."""
        recorded = self.config.trained_stages
        if recorded is None or not self.head.trained:
            return ()
        return tuple(m for m in self.config.stage_order if m not in recorded)

    def _usable(self, features: ClipFeatures, left_out: Sequence[str] = ()) -> tuple[ClipFeatures, list[str]]:
        """Drop modalities whose features are not what this model was trained on (e.g. a head
        trained on a dataset's own audio/vision features, given features from a video file), and
        those whose stage training never touched (`left_out`): a random adapter's reading, or a
        stage the readout never learnt to weigh, must not move the score."""
        expected = {"audio": self.config.audio_feature_dim,
                    "vision": self.config.embed_dim if self.config.clip_vision else self.config.vision_feature_dim}
        kept, warnings = replace(features), []
        for modality, width in expected.items():
            values = getattr(features, modality)
            if values is not None and values.shape[-1] != width:
                setattr(kept, modality, None)
                warnings.append(f"this model reads {width}-dim {modality} features (from its training data), "
                                f"not the {values.shape[-1]}-dim ones of this input: the {modality} stage is skipped")
        for modality in left_out:
            if getattr(kept, modality) is not None:
                setattr(kept, modality, None)
                if modality == "text":
                    kept.text_pooled = None
                warnings.append(f"this model was not trained on {modality}: its {modality} stage is left out")
        return kept, warnings

    def _model_warnings(self, out: HeadOutput, used: list[str]) -> list[str]:
        warnings = [RANDOM_WEIGHTS_WARNING] if self.clip.random_weights else []
        if not out.priors and not self.head.trained:
            warnings.append(
                f"only {', '.join(used)} was available and this model is untrained there: all labels are equally likely"
            )
        return warnings

    def save(self, directory: str | Path) -> Path:
        return save_checkpoint(directory, self.head, self.config)


def _prediction(label_set: LabelSet, features: ClipFeatures, out: HeadOutput, row: int, used: list[str],
                order: Sequence[str], logit_scale: float, warnings: list[str]) -> Prediction:
    """Row `row` of a batched head output, for the clip whose features (and modalities `used`) it came from."""
    logits = out.logits[row].float().cpu()
    probs = logits.softmax(dim=-1)
    stages = [
        StageAttention(
            name=f"stage {i + 1}: {modality}",
            modality=modality,
            elements=list(features.elements_of(modality)),
            attention=out.attentions[modality][row, :, :len(features.elements_of(modality))].float().cpu().numpy(),
        )
        for i, modality in enumerate(m for m in order if m in used)
    ]
    priors = {m: prior for m, prior in out.priors.items() if m in used}
    contributions = {m: (out.prior_weights[m][row] * prior[row]).cpu().tolist() for m, prior in priors.items()}
    contributions["decoder"] = out.decoder_term[row].cpu().tolist()
    cosines = {m: (prior[row] / logit_scale).cpu().tolist() for m, prior in priors.items()}
    anchors = label_set.anchors
    sentiment = float(np.dot(probs.numpy(), anchors)) if anchors is not None else None
    return Prediction(
        labels=label_set.names,
        probs=probs.tolist(),
        logits=logits.tolist(),
        stages=stages,
        modalities=used,
        missing=[m for m in order if m not in used],
        prior_weights={m: round(float(w[row]), 6) for m, w in out.prior_weights.items() if m in priors},
        contributions=contributions,
        cosines=cosines,
        warnings=warnings,
        sentiment=sentiment,
    )


def _add_left_out_stages(prediction: Prediction, features: ClipFeatures, left_out: Sequence[str],
                         order: Sequence[str]) -> None:
    """A stage left out because training never touched it, for a clip that has its modality: listed,
    in stage order, as `trained: false` with no attention (it read nothing and added nothing)."""
    added = [StageAttention(name=f"{modality} stage (left out: not trained)", modality=modality,
                            elements=list(features.elements_of(modality)),
                            attention=np.zeros((len(prediction.labels), len(features.elements_of(modality))),
                                               dtype=np.float32),
                            trained=False)
             for modality in left_out if features.elements_of(modality)]
    if added:
        prediction.stages = sorted(prediction.stages + added, key=lambda stage: list(order).index(stage.modality))


def _fingerprint(clip: ClipBundle, head: MerClipHead) -> str:
    """Names this model (its CLIP and every weight of its head): two checkpoints, two names. A local
    CLIP weights file counts with its size and time, so replacing it is not served stale features."""
    digest = hashlib.sha256(f"{FEATURES_VERSION} {clip.spec.text}".encode())
    if clip.spec.source == "file":
        stat = os.stat(clip.spec.weights)
        digest.update(f"{stat.st_size} {stat.st_mtime_ns}".encode())
    for name, tensor in head.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def build_head(config: ModelConfig, seed: int = RANDOM_SEED) -> MerClipHead:
    """A fresh head, its random weights (adapters, stage MLPs) drawn from `seed` alone, without touching the
    global random state: an untrained model (seed 0, as loaded without a checkpoint) is the same everywhere,
    and training with `--seed S` starts from seed S's initialisation. Every seed gives exactly CLIP
    zero-shot before training (the readout starts at zero whatever the seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MerClipHead(config)


def stage_weights(head: MerClipHead, modality: str) -> dict[str, torch.Tensor]:
    """The weights of one stage: its decoder stage and the adapter, if any, that brings its modality
    into CLIP's space."""
    prefixes = (f"decoder.stages.{modality}.",) + ((f"{modality}_adapter.",) if head.has_adapter(modality) else ())
    return {name: value for name, value in head.state_dict().items() if name.startswith(prefixes)}


def changed_stages(head: MerClipHead, seed: int = RANDOM_SEED) -> tuple[str, ...]:
    """The stages whose weights differ from a fresh head of the same config built from `seed`: what
    training changed. The initialisation is deterministic, so this holds after a resume too."""
    fresh = build_head(replace(head.config, trained_stages=None), seed)
    changed = []
    for modality in head.config.stage_order:
        now, start = stage_weights(head, modality), stage_weights(fresh, modality)
        if any(not torch.equal(value.detach().cpu().float(), start[name].float()) for name, value in now.items()):
            changed.append(modality)
    return tuple(changed)


def load_model(clip: str | None = None, checkpoint: str | Path | None = None, device: str = "auto",
               precision: str | None = None) -> MerClip:
    """Load CLIP (SPEC, default ViT-B-32:openai) and either a trained checkpoint or an untrained head.

    With a checkpoint, its config names the CLIP; `clip` overrides it (same embedding size required).
    `precision` overrides the device's CLIP precision (`load_clip`).
    """
    if checkpoint is None:
        bundle = load_clip(clip or DEFAULT_CLIP, device, precision)
        return MerClip(bundle, build_head(ModelConfig(clip=bundle.spec.text, embed_dim=bundle.embed_dim)))
    config, state = read_checkpoint(checkpoint)
    bundle = load_clip(clip or config.clip, device, precision)
    if bundle.embed_dim != config.embed_dim:
        raise MerClipError(
            f"checkpoint {checkpoint} was trained on a {config.embed_dim}-dim CLIP ({config.clip}); "
            f"{bundle.spec.text} has {bundle.embed_dim} dims"
        )
    head = build_head(config)
    load_weights(head, state, str(checkpoint))
    return MerClip(bundle, head)
