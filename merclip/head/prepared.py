"""Clips made ready to score against any labels: what a re-score with new labels can keep.

Checking a clip's features against the model, padding them into batches of similar length and
each decoder stage's keys and values of its elements do not depend on the labels. For a long
clip read utterance by utterance those are most of the scoring's cost, so the kept clip holds
them and new labels only run the label encoder and the label side of each stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from merclip.head.decoder import StageMemory
from merclip.head.inputs import ClipFeatures, ModalityInput

PADDED_ELEMENTS = 16384  # per head batch: clips x the longest clip's elements


@dataclass
class PreparedBatch:
    """Clips `indices` padded together; `memories` is None until the head has run on them here."""

    indices: list[int]
    inputs: dict[str, ModalityInput]
    memories: dict[str, StageMemory] | None = None

    def to(self, device: torch.device | str) -> PreparedBatch:
        memories = None if self.memories is None else {
            m: StageMemory(x.keys.to(device), x.values.to(device)) for m, x in self.memories.items()}
        return PreparedBatch(self.indices, {m: x.to(device) for m, x in self.inputs.items()}, memories)


@dataclass
class PreparedClips:
    """Clips as the model can use them (`unusable`: why a modality was dropped, per clip), in batches."""

    clips: list[ClipFeatures]
    unusable: list[list[str]]
    batches: list[PreparedBatch]


def length_buckets(clips: Sequence[ClipFeatures]) -> list[list[int]]:
    """Indices of `clips` in batches of similar length, each at most PADDED_ELEMENTS once padded
    (padding a 10 s utterance to a 10 min clip's 12,000 audio frames would cost gigabytes)."""
    def length(clip: ClipFeatures) -> int:
        return max(len(getattr(clip, m)) for m in clip.modalities) if clip.modalities else 1

    buckets: list[list[int]] = []
    for index in sorted(range(len(clips)), key=lambda i: length(clips[i])):
        if buckets and (len(buckets[-1]) + 1) * length(clips[index]) <= PADDED_ELEMENTS:
            buckets[-1].append(index)
        else:
            buckets.append([index])
    return buckets
