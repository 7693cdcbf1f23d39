"""Training data as cached features: one `Sample` per clip, batched into padded model inputs.

Every source (MMSA pickles, extracted video manifests) becomes a `FeatureSet`, so the
training loop and the evaluation never care where features came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from merclip.clip import ClipBundle
from merclip.head import ClipFeatures, ModalityInput, ModelConfig, batch_of


@dataclass
class Sample:
    id: str
    split: str
    features: ClipFeatures
    target: float | int  # a sentiment score (regression) or a class index (classification)


@dataclass
class FeatureSet:
    """Samples plus what the model must know about them.

    task: "regression" (targets are scores, `labels` carry numeric anchors) or
    "classification" (targets index `labels`); `audio_dim`/`vision_dim` are the
    feature widths (`vision_dim` None: CLIP image embeddings from video frames).
    """

    samples: list[Sample]
    task: str
    labels: str
    audio_dim: int
    vision_dim: int | None
    clip: str
    source: dict = field(default_factory=dict)

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def model_config(self, clip: ClipBundle) -> ModelConfig:
        """The architecture of a head for these features on this CLIP."""
        return ModelConfig(clip=clip.spec.text, embed_dim=clip.embed_dim, audio_feature_dim=self.audio_dim,
                           vision_feature_dim=self.vision_dim)


def collate(samples: list[Sample], device: torch.device | str = "cpu") -> dict[str, ModalityInput]:
    """Pad each modality to the longest sample in the batch; a sample without it gets an all-False mask."""
    return batch_of([s.features for s in samples], device)


def targets_tensor(samples: list[Sample], task: str, device: torch.device | str = "cpu") -> torch.Tensor:
    dtype = torch.float32 if task == "regression" else torch.long
    return torch.tensor([s.target for s in samples], dtype=dtype, device=device)


def epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of one epoch, from (seed, epoch) alone: resuming and DDP ranks agree on it."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(count, generator=generator).tolist()
