"""CMU-MOSI / CMU-MOSEI / CH-SIMS as distributed by the MMSA toolkit (aligned or unaligned pickles).

Each split (`train`, `valid`, `test`) holds `raw_text`, `audio` (N x La x Da, COVAREP;
may contain -inf), `vision` (N x Lv x Dv, Facet), `regression_labels` (N, in [-3, 3])
and, for unaligned data, `audio_lengths`/`vision_lengths`. Text is re-encoded from
`raw_text` by the CLIP text tower per word, exactly as the app does; the provided
audio and vision features go through the model's learned adapters.

A pickle can run code when loaded: only open files you trust, from a local path.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from merclip.clip_loader import ClipBundle
from merclip.errors import MerClipError
from merclip.features import ClipFeatures
from merclip.label_sets import MOSI_SEVEN
from merclip.text_features import encode_transcript
from train.data import FeatureSet, Sample

SPLITS = ("train", "valid", "test")
REQUIRED = ("raw_text", "audio", "vision", "regression_labels")


def load_mmsa(path: str | Path, clip: ClipBundle, show_progress: bool = True) -> FeatureSet:
    """Read a trusted local MMSA pickle into per-sample features (text encoded with `clip`)."""
    file = Path(path)
    if "://" in str(path) or not file.is_file():
        raise MerClipError(f"MMSA data must be a local pickle file; not found: {path}")
    try:
        with open(file, "rb") as handle:
            data = pickle.load(handle)  # noqa: S301 -- trusted local file named by the operator (see README)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
        raise MerClipError(f"{file} is not a readable MMSA pickle: {exc}") from exc
    missing = [s for s in SPLITS if s not in data]
    if missing:
        raise MerClipError(f"{file} has no {', '.join(missing)} split (expected MMSA's train/valid/test)")
    samples = []
    for split in SPLITS:
        samples += _split_samples(data[split], split, clip, file, show_progress)
    first = samples[0].features
    return FeatureSet(samples, task="regression", labels=MOSI_SEVEN, audio_dim=first.audio.shape[-1],
                      vision_dim=first.vision.shape[-1], clip=clip.spec.text, source={"format": "mmsa", "path": str(file)})


def _split_samples(part: dict, split: str, clip: ClipBundle, file: Path, show_progress: bool) -> list[Sample]:
    absent = [k for k in REQUIRED if k not in part]
    if absent:
        raise MerClipError(f"{file} split '{split}' lacks {', '.join(absent)}")
    audio, vision = _clean(part["audio"]), _clean(part["vision"])
    count = len(part["raw_text"])
    audio_lengths = _lengths(part.get("audio_lengths"), audio, count)
    vision_lengths = _lengths(part.get("vision_lengths"), vision, count)
    labels = np.asarray(part["regression_labels"], dtype=np.float32).reshape(count)
    ids = [str(i) for i in part.get("id", range(count))]
    samples = []
    for i in tqdm(range(count), desc=f"encoding {split} text", disable=not show_progress, leave=False):
        features = ClipFeatures(audio=torch.from_numpy(audio[i, : max(1, audio_lengths[i])]),
                                vision=torch.from_numpy(vision[i, : max(1, vision_lengths[i])]))
        features.audio_times = list(range(len(features.audio)))
        features.frame_times = list(range(len(features.vision)))
        text = encode_transcript(clip, str(part["raw_text"][i]))
        if text is not None:
            features.text, features.text_pooled, features.words = text.elements.cpu(), text.pooled.cpu(), text.words
        samples.append(Sample(ids[i], split, features, float(labels[i])))
    return samples


def _clean(values) -> np.ndarray:
    """COVAREP has -inf for unvoiced frames, some releases NaN: both become 0."""
    array = np.asarray(values, dtype=np.float32)
    return np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)


def _lengths(given, array: np.ndarray, count: int) -> list[int]:
    if given is None:  # aligned data: every sequence has the full length
        return [array.shape[1]] * count
    return [int(min(max(0, n), array.shape[1])) for n in np.asarray(given).reshape(count)]
