"""`python -m train.learning [--size small|mosi] [--clip SPEC] [--out DIR]`: does training find a planted signal?

For each planted case (train/planted.py) it trains the head with default options, then
reports: the steps until the validation metric first gets halfway from zero-shot to its
best, the test metric of the trained model against CLIP zero-shot, and how much of the
true label's attention the carrying stage puts on the carrying elements, as a multiple
of the uniform share (1.0 = no preference). The fusion case is also trained with each
of its two modalities left out, which must do worse.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from merclip.api import MerClip, build_head, load_model
from merclip.errors import MerClipError
from train import extract, train
from train.data import FeatureSet, Sample
from train.planted import MMSA_CASES, write_mmsa, write_video_manifest
from train.scoring import Scorer
from train.sources import load_data
from train.train import task_metrics, validation_metric

SIZES = {"small": {"train": 80, "valid": 20, "test": 40}, "mosi": {"train": 1284, "valid": 229, "test": 686}}
VIDEO_SIZES = {"small": {"train": 48, "valid": 16, "test": 16}, "mosi": {"train": 240, "valid": 40, "test": 80}}
TINY = "merclip-tiny:random"


@dataclass
class Outcome:
    case: str
    metric: str
    trained: float
    zero_shot: float
    steps_to_half: int | None  # optimiser steps until the validation metric got halfway from zero-shot to its best
    attention_share: dict[str, float]  # carrying modality -> share on the carrying elements / uniform share


def run_case(name: str, data_path: Path, data_format: str, carried: dict[str, dict], out: Path, clip: str,
             stages: str = "") -> Outcome:
    """Train with default options (quietly), then measure on the test split."""
    flags = ["--data", str(data_path), "--format", data_format, "--clip", clip, "--out", str(out), "--no-progress"]
    with contextlib.redirect_stderr(io.StringIO()):
        if train.main(flags + (["--stages", stages] if stages else [])) != 0:
            raise MerClipError(f"training the {name} case failed")
    model = load_model(checkpoint=out, device="cpu")
    data = load_data(str(data_path), data_format, model.clip, show_progress=False)
    zero_shot = MerClip(model.clip, build_head(model.config))
    test, valid = data.split("test"), data.split("valid")
    metric = "corr" if data.task == "regression" else "accuracy"  # CMU-MOSI's headline metric; classes
    scores = {label: _metric(m, data, test, metric) for label, m in (("trained", model), ("zero_shot", zero_shot))}
    valid_metric, higher = validation_metric(data.task)
    return Outcome(name, metric, scores["trained"], scores["zero_shot"],
                   _steps_to_half(out, _metric(zero_shot, data, valid, valid_metric), higher),
                   _attention_share(model, data, test, carried))


def _metric(model: MerClip, data: FeatureSet, samples: list[Sample], metric: str) -> float:
    scorer = Scorer(model, data.labels, data.task)
    return float(task_metrics(data.task, scorer.predict(model.head, samples), scorer.targets(samples),
                              scorer.labels.names)[metric])


def _steps_to_half(out: Path, zero_shot: float, higher: bool) -> int | None:
    with open(out / "log.csv", encoding="utf-8") as handle:
        rows = [(int(r["step"]), float(r["valid_metric"])) for r in csv.DictReader(handle)]
    best = max(v for _, v in rows) if higher else min(v for _, v in rows)
    halfway = (zero_shot + best) / 2
    return next((step for step, value in rows if (value >= halfway if higher else value <= halfway)), None)


def _attention_share(model: MerClip, data: FeatureSet, samples: list[Sample], carried: dict[str, dict]
                     ) -> dict[str, float]:
    """Mean over test samples of (attention of the true label on the carrying elements) / (their uniform share)."""
    ratios: dict[str, list[float]] = {}
    for sample in samples:
        where = carried.get(sample.id, {})
        if not where:
            continue
        prediction = model.predict(sample.features, data.labels)
        true = (int(np.clip(round(sample.target), -3, 3)) + 3 if data.task == "regression" else int(sample.target))
        for modality, positions in where.items():
            if modality not in prediction.modalities or not positions:
                continue
            row = prediction.stage(modality).attention[true]
            ratios.setdefault(modality, []).append(float(row[positions].sum()) / (len(positions) / len(row)))
    return {m: float(np.mean(r)) for m, r in ratios.items()}


def run_all(size: str, clip: str, folder: Path) -> list[Outcome]:
    sizes = SIZES[size]
    outcomes = []
    for index, (name, case) in enumerate(MMSA_CASES.items()):
        path, carried = write_mmsa(folder / f"case{index}.pkl", case, sizes)
        outcomes.append(run_case(name, path, "mmsa", carried, folder / f"case{index}", clip))
        if case.fusion:
            for left_out in case.carriers:
                stages = ",".join(m for m in ("text", "audio", "vision") if m != left_out)
                outcomes.append(run_case(f"{name}, without {left_out}", path, "mmsa", carried,
                                         folder / f"case{index}-no-{left_out}", clip, stages))
    features, carried = video_features(folder, VIDEO_SIZES[size], clip)
    outcomes.append(run_case("video manifest, a face in 2 of 8 frames", features, "manifest", carried,
                             folder / "video", clip))
    return outcomes


def video_features(folder: Path, sizes: dict[str, int], clip: str) -> tuple[Path, dict[str, dict]]:
    """The planted video clips written and run through `train.extract`, as training reads them."""
    manifest, carried = write_video_manifest(folder / "videos", sizes)
    features = folder / "video-features"
    with contextlib.redirect_stderr(io.StringIO()):
        if extract.main(["--manifest", str(manifest), "--out", str(features), "--clip", clip, "--whisper", "none",
                         "--device", "cpu"]) != 0:
            raise MerClipError("extracting the video case failed")
    return features, carried


def table(outcomes: list[Outcome]) -> str:
    lines = ["| case | test metric | trained | zero-shot | steps to halfway | attention on carrying elements (x uniform) |",
             "|---|---|---|---|---|---|"]
    for o in outcomes:
        shares = ", ".join(f"{m} {v:.1f}x" for m, v in o.attention_share.items()) or "-"
        lines.append(f"| {o.case} | {o.metric} | {o.trained:.3f} | {o.zero_shot:.3f} | {o.steps_to_half} | {shares} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.learning", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="mosi", choices=list(SIZES), help="mosi: CMU-MOSI's split sizes")
    parser.add_argument("--clip", default=TINY, help="CLIP SPEC (default: the tiny random one, seconds per case)")
    parser.add_argument("--out", default=None, help="keep the data and runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            folder = Path(args.out) if args.out else Path(stack.enter_context(tempfile.TemporaryDirectory()))
            folder.mkdir(parents=True, exist_ok=True)
            print(table(run_all(args.size, args.clip, folder)))
    except MerClipError as exc:
        print(f"train.learning: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
