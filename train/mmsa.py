"""CMU-MOSI / CMU-MOSEI / CH-SIMS as distributed by the MMSA toolkit (aligned or unaligned pickles).

Each split (`train`, `valid`, `test`) holds `raw_text`, `audio` (N x La x Da, COVAREP;
may contain -inf), `vision` (N x Lv x Dv, Facet), `regression_labels` (N; MOSI/MOSEI
in [-3, 3], CH-SIMS in [-1, 1]) and, for unaligned data, `audio_lengths`/`vision_lengths`.
Text is re-encoded from `raw_text` by the CLIP text tower per word, exactly as the app
does; the provided audio and vision features go through the model's learned adapters.

Which dataset it is decides the label anchors and the metrics (MMSA scores CH-SIMS with
its own formulas): the one the caller names (`--dataset`), else MOSI (MOSEI is scored
alike). It is never guessed from the label range: MOSI's scores can all lie in [-1, 1]
(a small or mild split), and CH-SIMS's anchors and metrics would then be silently wrong.
Labels outside the dataset's range are refused: [-1, 1] for CH-SIMS, [-3, 3] for MOSI and
MOSEI. Aligned pickles carry no lengths: the real frames are
the span between the first and the last frame that is not all zeros. MMSA's own models
take the length of aligned data from the BERT mask (padding at the end), while its
older `__truncate` skips leading all-zero frames (padding at the start), so both ends
are trimmed.

A pickle can run code when loaded: only open files you trust, from a local path.
"""

from __future__ import annotations

import pickle
import re
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from merclip.clip import ClipBundle, encode_transcript
from merclip.errors import MerClipError
from merclip.head import ClipFeatures
from merclip.labels import MOSI_SEVEN
from train.data import FeatureSet, Sample
from train.metrics import DATASETS

SPLITS = ("train", "valid", "test")
REQUIRED = ("raw_text", "audio", "vision", "regression_labels")
# MOSI's seven levels on CH-SIMS's scale, so the probability-weighted anchor is a score in [-1, 1]
SIMS_SEVEN = ("strongly negative=-1, negative=-0.6667, weakly negative=-0.3333, neutral=0, "
              "weakly positive=0.3333, positive=0.6667, strongly positive=1")
CHINESE = re.compile(r"[\u3400-\u9fff]")


def load_mmsa(path: str | Path, clip: ClipBundle, show_progress: bool = True, dataset: str | None = None
              ) -> FeatureSet:
    """Read a trusted local MMSA pickle into per-sample features (text encoded with `clip`).
    `dataset`: mosi, mosei or sims (see `which_dataset`); None is mosi."""
    file, data = Path(path), read_mmsa(path)
    dataset = which_dataset(data, file, dataset)
    if any(CHINESE.search(str(text)) for split in SPLITS for text in data[split].get("raw_text", [])[:50]):
        print("train.mmsa: warning: raw_text is Chinese, but CLIP's text tower learned English: with no spaces "
              "each sentence is one element of byte pieces, so read the text results as a weak baseline",
              file=sys.stderr)
    samples = []
    for split in SPLITS:
        samples += _split_samples(data[split], split, clip, file, show_progress)
    first = samples[0].features
    return FeatureSet(samples, task="regression", labels=SIMS_SEVEN if dataset == "sims" else MOSI_SEVEN,
                      audio_dim=first.audio.shape[-1], vision_dim=first.vision.shape[-1], clip=clip.spec.text,
                      source={"format": "mmsa", "path": str(file), "dataset": dataset})


def read_mmsa(path: str | Path) -> dict:
    """The pickle's splits, unprocessed; a clear error for anything that is not an MMSA pickle."""
    file = Path(path)
    if "://" in str(path) or not file.is_file():
        raise MerClipError(f"MMSA data must be a local pickle file; not found: {path}")
    try:
        with open(file, "rb") as handle:
            data = pickle.load(handle)  # noqa: S301 -- trusted local file named by the operator (see README)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
        raise MerClipError(f"{file} is not a readable MMSA pickle: {exc}") from exc
    missing = [s for s in SPLITS if not isinstance(data, dict) or s not in data]
    if missing:
        raise MerClipError(f"{file} has no {', '.join(missing)} split (expected MMSA's train/valid/test)")
    return data


def which_dataset(data: dict, file: Path, named: str | None = None) -> str:
    """`named` (None: mosi) if the labels allow it. Never a guess from the labels' range (see the module's
    docstring): they can only refute a name: beyond [-1, 1] CH-SIMS, beyond [-3, 3] MOSI and MOSEI."""
    dataset = named or "mosi"
    if dataset not in DATASETS:
        raise MerClipError(f"--dataset {dataset}: expected one of {', '.join(DATASETS)}")
    labels = np.concatenate([np.asarray(data[s].get("regression_labels", []), dtype=np.float64).ravel()
                             for s in SPLITS])
    top = float(np.abs(labels).max()) if len(labels) else 0.0
    if dataset == "sims" and top > 1:
        raise MerClipError(f"{file} has labels up to {top:g}, outside CH-SIMS's [-1, 1]: is it MOSI or MOSEI?")
    if top > 3:
        told = f"--dataset {named}" if named else "MOSI, the default without --dataset"
        raise MerClipError(f"{file} has labels up to {top:g}, outside MOSI's and MOSEI's [-3, 3] ({told})")
    return dataset


def _split_samples(part: dict, split: str, clip: ClipBundle, file: Path, show_progress: bool) -> list[Sample]:
    absent = [k for k in REQUIRED if k not in part]
    if absent:
        raise MerClipError(f"{file} split '{split}' lacks {', '.join(absent)}")
    audio, vision = _clean(part["audio"]), _clean(part["vision"])
    count = len(part["raw_text"])
    audio_spans = _spans(part.get("audio_lengths"), audio, count)
    vision_spans = _spans(part.get("vision_lengths"), vision, count)
    labels = np.asarray(part["regression_labels"], dtype=np.float32).reshape(count)
    ids = [str(i) for i in part.get("id", range(count))]
    samples = []
    for i in tqdm(range(count), desc=f"encoding {split} text", disable=not show_progress, leave=False):
        features = ClipFeatures(audio=torch.from_numpy(audio[i, slice(*audio_spans[i])]),
                                vision=torch.from_numpy(vision[i, slice(*vision_spans[i])]))
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


def _spans(given, array: np.ndarray, count: int) -> list[tuple[int, int]]:
    """(start, end) of each sample's real frames, at least one frame. Given lengths (unaligned data)
    count from the start; without them (aligned data) the all-zero frames at either end are padding."""
    if given is not None:
        return [(0, int(min(max(1, n), array.shape[1]))) for n in np.asarray(given).reshape(count)]
    spans = []
    for frames in (array != 0).any(axis=2):
        real = np.flatnonzero(frames)
        spans.append((int(real[0]), int(real[-1]) + 1) if len(real) else (0, 1))
    return spans
