"""The inputs the model scores: per-modality elements, batched and masked.

A clip becomes `ClipFeatures` (one clip, unpadded, with times and words for the UI);
training batches and the model itself use `ModalityInput` (padded, with a mask).
A modality that is missing is simply absent from the mapping, never zero-filled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from merclip.labels.templates import MODALITIES

FEATURE_TENSORS = ("vision", "text", "text_pooled", "audio")


@dataclass
class ModalityInput:
    """Padded elements (B, T, D), a mask (B, T) that is True where an element exists,
    and for text the CLIP sentence embedding (B, d)."""

    elements: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> ModalityInput:
        pooled = None if self.pooled is None else self.pooled.to(device)
        return ModalityInput(self.elements.to(device), self.mask.to(device), pooled)


@dataclass
class ClipFeatures:
    """Features of one clip, with what the UI needs to label each element.

    vision: (T_v, d) normalised CLIP image embeddings, `frame_times` in seconds;
    text: (T_t, d) per-word features, `words`, `text_pooled` sentence embedding;
    audio: (T_a, F) acoustic frame features, `audio_times` in seconds.
    """

    vision: torch.Tensor | None = None
    frame_times: list[float] = field(default_factory=list)
    text: torch.Tensor | None = None
    text_pooled: torch.Tensor | None = None
    words: list[str] = field(default_factory=list)
    audio: torch.Tensor | None = None
    audio_times: list[float] = field(default_factory=list)

    @property
    def modalities(self) -> list[str]:
        return [m for m in ("text", "audio", "vision") if getattr(self, m) is not None]

    def elements_of(self, modality: str) -> Sequence[str | float]:
        """What each column of a stage's attention refers to: words or times in seconds."""
        return {"text": self.words, "audio": self.audio_times, "vision": self.frame_times}[modality]

    def as_batch(self, device: torch.device | str = "cpu") -> dict[str, ModalityInput]:
        return batch_of([self], device)

    def to_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Tensors and JSON-able metadata, for safetensors files (disk cache, training features)."""
        tensors = {name: getattr(self, name).detach().cpu().contiguous()
                   for name in FEATURE_TENSORS if getattr(self, name) is not None}
        meta = {"frame_times": self.frame_times, "words": self.words, "audio_times": self.audio_times}
        return tensors, meta

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], meta: dict) -> ClipFeatures:
        return cls(vision=tensors.get("vision"), frame_times=list(meta["frame_times"]), text=tensors.get("text"),
                   text_pooled=tensors.get("text_pooled"), words=list(meta["words"]), audio=tensors.get("audio"),
                   audio_times=list(meta["audio_times"]))



def batch_of(clips: Sequence[ClipFeatures], device: torch.device | str = "cpu") -> dict[str, ModalityInput]:
    """Pad each modality to the longest clip in the batch; a clip without it gets an all-False mask
    (the head then leaves it out for that clip alone)."""
    batch = {}
    for modality in MODALITIES:
        values = [getattr(clip, modality) for clip in clips]
        present = [v for v in values if v is not None]
        if not present:
            continue
        width = present[0].shape[-1]
        longest = max(len(v) for v in present)
        elements = torch.zeros(len(clips), max(longest, 1), width)
        mask = torch.zeros(len(clips), max(longest, 1), dtype=torch.bool)
        for row, value in enumerate(values):
            if value is not None and len(value):
                elements[row, : len(value)] = value.float()
                mask[row, : len(value)] = True
        pooled = None
        if modality == "text":
            pooled = torch.stack([clip.text_pooled.float() if clip.text_pooled is not None else torch.zeros(width)
                                  for clip in clips])
        batch[modality] = ModalityInput(elements, mask, pooled).to(device)
    return batch
