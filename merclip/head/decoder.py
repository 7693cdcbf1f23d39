"""The cross-modal decoder: label queries read each modality in turn.

Stage `s` (one per modality, in a configured order) cross-attends from the labels
to that modality's elements (words, audio frames, video frames). The label state is
each stage's own label embedding plus a residual `delta` carried from stage to stage,
so text -> audio -> vision fuse one after another while every stage still asks its
question in its modality's phrasing.

At initialisation the query, key, value and output projections are identities and the
attention gates are open, so `delta` is already the evidence each stage attended to, in
CLIP's space: the first stage's attention is softmax_t(tau * cos(E_k, x_t)), later stages
ask with the label moved towards what earlier stages found. What keeps an untrained model
equal to CLIP zero-shot is the head's readout, which starts at zero; with the gates open,
its gradient depends on the input from the first step. (With the gates closed too, every
path was a product of zeros and training sat on that saddle for about a hundred steps.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

OPEN_GATE = 1.0  # tanh(1.0) = 0.76 of each stage's attended evidence joins the label state from the start


def _identity_linear(dim: int) -> nn.Linear:
    layer = nn.Linear(dim, dim)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(dim))
        layer.bias.zero_()
    return layer


class StageMemory(NamedTuple):
    """What a stage's labels read: normalised keys and values of its elements, (B, T, d) each."""

    keys: torch.Tensor
    values: torch.Tensor


class CrossModalStage(nn.Module):
    """Single-head cosine cross-attention from K label queries to T elements, then gated residual updates."""

    def __init__(self, dim: int, temperature: float, mlp_ratio: float, attend: bool = True) -> None:
        super().__init__()
        self.attend = attend  # False: every element weighs the same (the no-attention ablation)
        self.query = _identity_linear(dim)
        self.key = _identity_linear(dim)
        self.value = _identity_linear(dim)
        self.out = _identity_linear(dim)
        self.log_tau = nn.Parameter(torch.tensor(math.log(temperature)))
        self.attn_gate = nn.Parameter(torch.tensor(OPEN_GATE))
        self.norm = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.mlp_gate = nn.Parameter(torch.zeros(()))

    def memory(self, elements: torch.Tensor) -> StageMemory:
        """The elements' keys and values (B, T, d): they do not depend on the labels, so a clip
        re-scored with new labels can keep them (for a long clip, most of a stage's cost)."""
        return StageMemory(F.normalize(self.key(elements), dim=-1), self.value(elements))

    def forward(self, label_embeddings: torch.Tensor, delta: torch.Tensor, memory: StageMemory,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """label_embeddings (K, d), delta (B, K, d), the elements' memory, mask (B, T) -> new delta,
        attention (B, K, T).

        Samples whose mask is all False (the modality is missing for them) keep their
        delta and get an all-zero attention row: nothing is invented for them.
        """
        queries = F.normalize(self.query(label_embeddings + delta), dim=-1)
        scores = self.log_tau.exp() * torch.einsum("bkd,btd->bkt", queries, memory.keys)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        present = mask.any(dim=1)
        if not self.attend:
            scores = torch.where(mask[:, None, :], torch.zeros_like(scores), scores)
        attention = torch.where(present[:, None, None], scores, torch.zeros_like(scores)).softmax(dim=-1)
        attention = attention * mask[:, None, :]
        attended = torch.einsum("bkt,btd->bkd", attention, memory.values)
        gate = present[:, None, None].to(delta.dtype)
        delta = delta + gate * torch.tanh(self.attn_gate) * self.out(attended)
        if torch.is_grad_enabled() or bool(self.mlp_gate != 0):  # a closed gate, not learning, adds exactly 0
            delta = delta + gate * torch.tanh(self.mlp_gate) * self.mlp(self.norm(label_embeddings + delta))
        return delta, attention


class CrossModalDecoder(nn.Module):
    """One stage per modality, run in `order`; a modality absent from the inputs skips its stage."""

    def __init__(self, dim: int, order: tuple[str, ...], temperatures: Mapping[str, float], mlp_ratio: float,
                 attend: bool = True) -> None:
        """`temperatures`: each stage's initial tau, by modality."""
        super().__init__()
        self.order = tuple(order)
        self.stages = nn.ModuleDict({m: CrossModalStage(dim, temperatures[m], mlp_ratio, attend) for m in self.order})

    def memories(self, elements: Mapping[str, torch.Tensor]) -> dict[str, StageMemory]:
        """Each stage's keys and values of its modality's elements (B, T_m, d)."""
        return {m: self.stages[m].memory(x) for m, x in elements.items() if m in self.stages}

    def forward(self, label_embeddings: Mapping[str, torch.Tensor], memories: Mapping[str, StageMemory],
                masks: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Returns the final residual delta (B, K, d) and each stage's attention (B, K, T_m), in stage order."""
        ran = [m for m in self.order if m in memories]
        if not ran:
            raise ValueError("the decoder needs at least one modality")
        batch = memories[ran[0]].keys.shape[0]
        k, d = label_embeddings[ran[0]].shape
        delta = memories[ran[0]].keys.new_zeros(batch, k, d)
        attentions: dict[str, torch.Tensor] = {}
        for modality in ran:
            delta, attentions[modality] = self.stages[modality](
                label_embeddings[modality], delta, memories[modality], masks[modality]
            )
        return delta, attentions
