"""Pick the loader for `--format`: MMSA pickles or features extracted from a video manifest."""

from __future__ import annotations

from merclip.clip import ClipBundle
from merclip.errors import MerClipError
from train.data import FeatureSet
from train.manifest import load_extracted
from train.mmsa import load_mmsa


def load_data(path: str, data_format: str, clip: ClipBundle, show_progress: bool = True,
              dataset: str | None = None) -> FeatureSet:
    """`dataset` (mosi, mosei or sims; None: mosi) names an MMSA pickle's dataset; other formats have none."""
    if dataset and data_format != "mmsa":
        raise MerClipError(f"--dataset applies to --format mmsa only, not {data_format}")
    if data_format == "mmsa":
        return load_mmsa(path, clip, show_progress, dataset)
    if data_format == "manifest":
        data = load_extracted(path)
        if data.clip != clip.spec.text:
            raise MerClipError(f"{path} was extracted with CLIP {data.clip}, not {clip.spec.text}: use --clip {data.clip}")
        return data
    raise MerClipError(f"--format {data_format}: expected mmsa or manifest")
