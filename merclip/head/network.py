"""The trainable part of MER-CLIP: audio adapter, cross-modal decoder and label-guided readout.

logits = CLIP prior + decoder term. The prior is CLIP's own zero-shot score per
modality (vision, text), mixed by weights renormalised over the modalities present.
The decoder term scores each label's final query state, through a learned readout,
against that label's own embedding, so it applies to labels never seen in training; the
readout starts at zero, which makes the untrained model exactly CLIP zero-shot while its
gradient, from the first step, depends on what the decoder attended to.

What the readout reads (`MerClipHead.evidence`): the label's anchor, the evidence `delta`
the stages gathered, and interaction features gelu(W LN(delta)) of that evidence, which
make products of modalities readable (a positive voice with a negative face: a linear
readout of `delta` only ever sums the modalities' evidence). The evidence and its
interaction features are centred on their running mean over training batches, so the
readout's gradient on them carries what differs between clips; uncentred, that mean is
the same for every clip, and with the anchor it made Adam move the labels' constant
scores ~15x faster than the evidence until the softmax saturated on one label and
training stopped (issue 28: planted xor and x^2 cases fell far short for some seeds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from merclip.head.config import PRIOR_MODALITIES, ModelConfig
from merclip.head.decoder import CrossModalDecoder, StageMemory
from merclip.head.inputs import ModalityInput


@dataclass
class HeadOutput:
    """logits (B, K); per-modality prior logits (B, K) and their mixing weights (B,);
    the decoder term (B, K); each stage's attention (B, K, T), in stage order."""

    logits: torch.Tensor
    priors: dict[str, torch.Tensor]
    prior_weights: dict[str, torch.Tensor]
    decoder_term: torch.Tensor
    attentions: dict[str, torch.Tensor]


MEAN_RATE = 0.1  # the running mean's weight on the latest batch, once ten have been seen
# The initial attention temperature of a stage that reads adapted features (audio; a dataset's own vision
# features). Their adapter is untrained, so a cosine with the labels means nothing yet: at CLIP's 1/0.07 it
# made each label average a few random frames, which lost the noise averaging a signal in every frame needs
# (sign x sign at 1284 samples: test corr .49 against .66 at tau 1, `python -m train.interactions`). At 1 the
# weights stay within e^2 of each other, near a plain mean; training sharpens them where a signal lives in a
# few frames (the temperature learns faster than the other weights: see train.train's TEMPERATURE_LR_SCALE).
ADAPTED_TEMPERATURE = 1.0


class MerClipHead(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.audio_adapter = nn.Sequential(nn.Linear(config.audio_feature_dim, dim), nn.LayerNorm(dim))
        self.vision_adapter = (None if config.clip_vision else
                               nn.Sequential(nn.Linear(config.vision_feature_dim, dim), nn.LayerNorm(dim)))
        temperatures = {m: ADAPTED_TEMPERATURE if self._adapter(m) is not None else config.attention_temperature
                        for m in config.stage_order}
        self.decoder = CrossModalDecoder(dim, config.stage_order, temperatures, config.mlp_ratio, config.attention)
        features = config.interaction_width
        self.readout = nn.Linear(dim + features, dim)
        nn.init.zeros_(self.readout.weight)
        nn.init.zeros_(self.readout.bias)
        if features:
            self.interaction = nn.Linear(dim, features)
            self.register_buffer("evidence_mean", torch.zeros(dim + features))
            self.register_buffer("mean_updates", torch.zeros(()))

    def forward(self, inputs: Mapping[str, ModalityInput], label_embeddings: Mapping[str, torch.Tensor],
                logit_scale: float, logit_bias: float | None = None,
                memories: Mapping[str, StageMemory] | None = None) -> HeadOutput:
        """`label_embeddings` holds a (K, d) normalised embedding per modality (from that modality's
        templates); `memories`, from `memories(inputs)`, saves recomputing what the labels do not change."""
        inputs = {m: x for m, x in inputs.items() if m in self.decoder.order}
        if not inputs:
            raise ValueError("no modality to score: give at least one of " + ", ".join(self.decoder.order))
        masks = {m: x.mask for m, x in inputs.items()}
        priors, weights = self._priors(inputs, label_embeddings, logit_scale, logit_bias)
        delta, attentions = self.decoder(label_embeddings, memories or self.memories(inputs), masks)
        anchor = F.normalize(torch.stack([label_embeddings[m] for m in self.decoder.order]).mean(dim=0), dim=-1)
        decoder_term = logit_scale * torch.einsum("bkd,kd->bk", self.readout(self.evidence(anchor, delta)), anchor)
        prior = sum((weights[m][:, None] * priors[m] for m in priors), torch.zeros_like(decoder_term))
        return HeadOutput(prior + decoder_term, priors, weights, decoder_term, attentions)

    def evidence(self, anchor: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """What the readout reads for each label (B, K, d + interaction features): the anchor plus the
        centred evidence, then the centred interaction features, centred on the running mean of earlier
        batches; a training step (grad enabled) then moves that mean towards its batch's mean. A config without interaction features
        (checkpoints from before them) reads anchor + delta, as those heads were trained."""
        if not self.config.interaction_width:
            return anchor + delta
        evidence = torch.cat([delta, F.gelu(self.interaction(F.layer_norm(delta, delta.shape[-1:])))], dim=-1)
        centred = evidence - self.evidence_mean.to(evidence.dtype)
        if self.training and torch.is_grad_enabled():
            self._track_mean(evidence.detach())  # after centring: a sample's logits never depend on its batch mates
        dim = anchor.shape[-1]
        return torch.cat([centred[..., :dim] + anchor, centred[..., dim:]], dim=-1)

    @torch.no_grad()
    def _track_mean(self, evidence: torch.Tensor) -> None:
        """The mean of every batch so far while there are few, then an exponential average (10% per
        step) that follows the evidence as the decoder learns. Under torchrun the mean is the whole
        batch's, over every process's share, so two processes train the same head as one."""
        total = evidence.float().sum(dim=(0, 1))
        count = torch.tensor(float(evidence.shape[0] * evidence.shape[1]), device=total.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(total)
            torch.distributed.all_reduce(count)
        if not bool(torch.isfinite(total).all()):
            return  # an overflowing step (which the gradient scaler skips) must not poison the mean for good
        rate = torch.clamp(1.0 / (self.mean_updates + 1), min=MEAN_RATE)
        self.evidence_mean.lerp_((total / count).to(self.evidence_mean.dtype), rate.to(self.evidence_mean.dtype))
        self.mean_updates += 1

    def memories(self, inputs: Mapping[str, ModalityInput]) -> dict[str, StageMemory]:
        """Each stage's keys and values of its (adapted) elements: all of the head that the labels leave alone."""
        return self.decoder.memories({m: self.adapt(m, x.elements) for m, x in inputs.items()
                                      if m in self.decoder.order})

    @property
    def trained(self) -> bool:
        """False for a fresh head (its readout is still zero): then the adapters are untrained too."""
        return bool(self.readout.weight.any())

    def has_adapter(self, modality: str) -> bool:
        return self._adapter(modality) is not None

    def adapt(self, modality: str, elements: torch.Tensor) -> torch.Tensor:
        """A modality's elements in CLIP's joint space, unit length like CLIP's own embeddings: features
        from an adapter (audio; the dataset's vision features) would otherwise outweigh words and faces
        in what the stages pass on by their norm alone (a LayerNorm's output has norm sqrt(d))."""
        adapter = self._adapter(modality)
        return elements if adapter is None else F.normalize(adapter(elements), dim=-1)

    def _adapter(self, modality: str) -> nn.Module | None:
        return {"audio": self.audio_adapter, "vision": self.vision_adapter}.get(modality)

    def _priors(self, inputs: Mapping[str, ModalityInput], label_embeddings: Mapping[str, torch.Tensor],
                logit_scale: float, logit_bias: float | None
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        priors, raw_weights = {}, {}
        for modality in PRIOR_MODALITIES:
            weight = self.config.prior_weights.get(modality, 0.0)
            if modality not in inputs or weight <= 0 or (modality == "vision" and not self.config.clip_vision):
                continue
            pooled = _pooled(inputs[modality])
            logits = logit_scale * pooled @ label_embeddings[modality].T
            priors[modality] = logits + logit_bias if logit_bias is not None else logits
            raw_weights[modality] = weight * inputs[modality].mask.any(dim=1).float()
        if not priors:
            return {}, {}
        # float32 even under fp16 autocast: there 1e-12 is 0, and a sample with neither modality got 0 / 0
        total = torch.stack(list(raw_weights.values())).sum(dim=0).clamp_min(1e-12)
        return priors, {m: w / total for m, w in raw_weights.items()}


def _pooled(x: ModalityInput) -> torch.Tensor:
    """The modality's CLIP embedding: the given sentence embedding, or the mean of the
    normalised elements over the mask, re-normalised."""
    if x.pooled is not None:
        return F.normalize(x.pooled, dim=-1)
    mask = x.mask[..., None].to(x.elements.dtype)
    return F.normalize((F.normalize(x.elements, dim=-1) * mask).sum(dim=1), dim=-1)
