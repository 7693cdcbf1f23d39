"""Small datasets in the exact formats the training code reads (no real dataset is available offline)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

POSITIVE = ["great", "wonderful", "loved", "happy", "brilliant"]
NEGATIVE = ["awful", "terrible", "hated", "sad", "boring"]


def write_mmsa(path: Path, sizes: dict[str, int] | None = None, audio_dim: int = 5, vision_dim: int = 20,
               aligned: bool = False, seed: int = 0, lengths: tuple[int, int, int] = (20, 30, 25)) -> Path:
    """An MMSA-style pickle whose labels follow the vision features and the words, with COVAREP-like -inf."""
    rng = np.random.default_rng(seed)
    sizes = sizes or {"train": 48, "valid": 16, "test": 16}
    data = {}
    for split, n in sizes.items():
        text_len, audio_len, vision_len = (lengths[0],) * 3 if aligned else lengths
        scores = np.round(rng.uniform(-3, 3, n) * 5) / 5
        scores[: max(1, n // 8)] = 0.0  # some neutral clips, as in MOSI
        audio = rng.standard_normal((n, audio_len, audio_dim)).astype(np.float32)
        audio[:, ::7, 0] = -np.inf  # unvoiced frames
        vision = rng.standard_normal((n, vision_len, vision_dim)).astype(np.float32)
        vision[:, :, 0] += scores[:, None]  # learnable from vision
        words = [" ".join(rng.choice(POSITIVE if s > 0 else NEGATIVE if s < 0 else ["okay", "fine"], 4)) for s in scores]
        part = {
            "raw_text": np.array(words), "audio": audio, "vision": vision,
            "text": rng.standard_normal((n, text_len, 768)).astype(np.float32),
            "text_bert": np.zeros((n, 3, text_len), np.float32),
            "id": np.array([f"{split}_{i}" for i in range(n)]),
            "regression_labels": scores.astype(np.float32),
        }
        if not aligned:
            part["audio_lengths"] = rng.integers(5, audio_len + 1, n)
            part["vision_lengths"] = rng.integers(5, vision_len + 1, n)
        data[split] = part
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    return path
