"""The head scored against the dataset's labels: training's loss and evaluation's predictions.

Regression (MOSI/MOSEI) reads the probability-weighted label anchor as the sentiment
score, exactly as `Prediction.sentiment` does in the app; classification reads the logits.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from merclip.api import MerClip
from merclip.errors import MerClipError
from merclip.head import MerClipHead
from merclip.labels import MODALITIES, Label, parse_labels
from train.data import Sample, collate, targets_tensor


class Scorer:
    """Label embeddings for one label set, and what the head's logits mean for the task."""

    def __init__(self, model: MerClip, labels: str, task: str) -> None:
        self.model = model
        self.labels = parse_labels(labels)
        self.task = task
        if task == "regression" and self.labels.anchors is None:
            raise MerClipError("regression needs labels with numeric anchors, e.g. 'negative=-3, neutral=0, positive=3'")
        self.anchors = torch.tensor(self.labels.anchors or [0.0] * len(self.labels), device=model.device)

    def embeddings(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """(K, d) per modality; with a generator, one random template per modality and synonym per label
        (label augmentation), else every template and synonym averaged, as in the app."""
        templates = self.model.config.templates
        if generator is None:
            return self.model.label_embeddings(self.labels, templates)[0]
        labels = [Label(label.name, (label.synonyms[_pick(len(label.synonyms), generator)],), label.anchor)
                  for label in self.labels.labels]
        return {m: self.model.labels.encode(labels, (templates[m][_pick(len(templates[m]), generator)],))[0]
                for m in MODALITIES}

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores (B,) for regression, logits (B, K) for classification."""
        if self.task == "regression":
            return logits.float().softmax(dim=-1) @ self.anchors
        return logits.float()

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample losses: L1 on the score (the MOSI convention) or cross-entropy."""
        if self.task == "regression":
            return (self.outputs(logits) - targets).abs()
        return F.cross_entropy(logits.float(), targets, reduction="none")

    def predict(self, head: MerClipHead, samples: list[Sample], batch_size: int = 64) -> np.ndarray:
        """Scores or class indices for samples, in order."""
        embeddings = self.embeddings()
        results = []
        head.eval()
        with torch.no_grad():
            for start in range(0, len(samples), batch_size):
                batch = collate(samples[start: start + batch_size], self.model.device)
                logits = head(batch, embeddings, self.model.clip.logit_scale, self.model.clip.logit_bias).logits
                out = self.outputs(logits)
                results.append(out if self.task == "regression" else out.argmax(dim=-1))
        return torch.cat(results).cpu().numpy()

    def targets(self, samples: list[Sample]) -> np.ndarray:
        return targets_tensor(samples, self.task).numpy()


def _pick(count: int, generator: torch.Generator) -> int:
    return int(torch.randint(count, (1,), generator=generator))
