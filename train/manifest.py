"""Raw-video datasets: a CSV manifest (`path, split, label` or `path, split, score`) and
the folder of features `python -m train.extract` writes from it.

One safetensors file per clip, named from its path, so extraction can stop at any
time and resume, and several processes can share the work by `--shard i/n`.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from merclip.errors import MerClipError
from merclip.head import ClipFeatures, read_tensor_file
from merclip.media import AUDIO_FEATURE_DIM
from train.data import FeatureSet, Sample

INFO_FILE = "extract.json"
FEATURES_DIR = "features"
SAMPLE_KEY = "sample"


@dataclass(frozen=True)
class ManifestRow:
    path: Path
    split: str
    label: str | None
    score: float | None

    @property
    def clip_name(self) -> str:
        return hashlib.sha256(str(self.path).encode()).hexdigest()[:20]


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Rows with paths resolved against the manifest's folder; one clear error per bad row."""
    file = Path(path)
    if not file.is_file():
        raise MerClipError(f"manifest not found: {file}")
    with open(file, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        if not {"path", "split"} <= columns or not ({"label", "score"} & columns):
            raise MerClipError(f"{file}: expected columns path, split and label or score; found {sorted(columns)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                score = float(row["score"]) if row.get("score") not in (None, "") else None
            except ValueError:
                raise MerClipError(f"{file} line {line}: score '{row['score']}' is not a number") from None
            label = (row.get("label") or "").strip() or None
            if label is None and score is None:
                raise MerClipError(f"{file} line {line}: no label and no score")
            rows.append(ManifestRow((file.parent / row["path"]).resolve(), row["split"].strip(), label, score))
    if not rows:
        raise MerClipError(f"{file} lists no clips")
    return rows


def load_extracted(folder: str | Path) -> FeatureSet:
    """The features `train.extract` wrote, as a FeatureSet (classification if labels, else regression)."""
    root = Path(folder)
    info_file = root / INFO_FILE
    if not info_file.is_file():
        raise MerClipError(f"{root} holds no extracted features: run `python -m train.extract --manifest CSV --out {root}`")
    info = json.loads(info_file.read_text(encoding="utf-8"))
    samples, names = [], []
    for file in sorted((root / FEATURES_DIR).glob("*.safetensors")):
        tensors, meta = read_tensor_file(file, SAMPLE_KEY)
        samples.append((meta, ClipFeatures.from_tensors(tensors, meta)))
    if not samples:
        raise MerClipError(f"{root}/{FEATURES_DIR} is empty: extraction has not produced any clip yet")
    regression = all(meta["score"] is not None for meta, _ in samples)
    if not regression:
        names = sorted({meta["label"] for meta, _ in samples if meta["label"] is not None})
    samples.sort(key=lambda item: item[0]["path"])  # files are named by a hash: order by path, so a run is repeatable
    data = [Sample(meta["path"], meta["split"], features, meta["score"] if regression else names.index(meta["label"]))
            for meta, features in samples if regression or meta["label"] is not None]
    labels = info.get("labels") or ", ".join(names)
    return FeatureSet(data, task="regression" if regression else "classification", labels=labels,
                      audio_dim=AUDIO_FEATURE_DIM, vision_dim=None, clip=info["clip"],
                      source={"format": "manifest", "path": str(root)})
