"""`python -m train.evaluate --checkpoint DIR [DIR ...] --data PATH --format mmsa|manifest [--split test] --out REPORT.json`.

Writes REPORT.json and REPORT.md. Several checkpoints (e.g. one per seed) are
aggregated as mean and standard deviation. Every report also has a zero-shot row: the
untrained head (CLIP prior only) with the same label prompts, so it shows what
training adds. `--zero-shot` evaluates only that. MMSA data is scored with its
dataset's metrics (CH-SIMS has its own; see train.metrics): the one `--dataset` names,
else the one the checkpoint was trained on (its train_config.json), else MOSI. Never
guessed from the label range (see train.mmsa).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from merclip.api import MerClip, build_head, load_model
from merclip.clip import DEFAULT_CLIP, load_clip
from merclip.errors import MerClipError
from train.data import FeatureSet
from train.metrics import DATASETS, aggregate, classification_metrics, regression_metrics
from train.mmsa import SIMS_SEVEN
from train.scoring import Scorer
from train.sources import load_data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="*", default=[], help="trained folders (several: mean and std)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--format", required=True, choices=["mmsa", "manifest"])
    parser.add_argument("--dataset", default=None, choices=DATASETS,
                        help="MMSA data: which metrics (default: the dataset the checkpoint was trained on, from its "
                             "train_config.json, else mosi; never guessed from the labels)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", required=True, help="REPORT.json (REPORT.md is written beside it)")
    parser.add_argument("--zero-shot", action="store_true", help="evaluate only the untrained model")
    parser.add_argument("--clip", default=None, help="CLIP SPEC for --zero-shot (default: the checkpoint's, else "
                                                     f"{DEFAULT_CLIP})")
    parser.add_argument("--labels", default=None, help="label text (default: the one used in training)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return parser.parse_args(argv)


def evaluate(args: argparse.Namespace) -> dict:
    if not args.checkpoint and not args.zero_shot:
        raise MerClipError("give --checkpoint DIR (one or more) or --zero-shot")
    trained = [load_model(args.clip, checkpoint, args.device) for checkpoint in args.checkpoint]
    clip = trained[0].clip if trained else load_clip(args.clip or DEFAULT_CLIP, args.device)
    dataset = args.dataset or (_training_dataset(args.checkpoint) if args.format == "mmsa" else None)
    data = load_data(args.data, args.format, clip, dataset=dataset)
    samples = data.split(args.split)
    if not samples:
        raise MerClipError(f"the data has no '{args.split}' split")
    labels = args.labels or _training_labels(args.checkpoint) or data.labels
    zero_shot = _scores(MerClip(clip, build_head(data.model_config(clip))), samples, labels, data)
    runs = [_scores(model, samples, labels, data) for model in trained]
    report = {"split": args.split, "data": str(args.data), "task": data.task, "dataset": data.source.get("dataset"),
              "labels": labels, "n": len(samples),
              "checkpoints": [str(c) for c in args.checkpoint], "zero_shot": zero_shot}
    if len(runs) == 1:
        report |= runs[0] | {"runs": runs}
    elif runs:
        summary = aggregate(runs)
        report |= {k: v["mean"] for k, v in summary.items()} | {"std": {k: v["std"] for k, v in summary.items()},
                                                                 "runs": runs}
    else:
        report |= zero_shot
    return report


def _scores(model: MerClip, samples, labels: str, data: FeatureSet) -> dict[str, float]:
    scorer = Scorer(model, labels, data.task)
    preds, targets = scorer.predict(model.head, samples), scorer.targets(samples)
    if data.task == "regression":
        return regression_metrics(preds, targets, data.source.get("dataset", "mosi"))
    return classification_metrics(targets, preds, scorer.labels.names)


def _training_labels(checkpoints: list[str]) -> str | None:
    return next((settings.get("labels") for settings in _training_settings(checkpoints)), None)


def _training_dataset(checkpoints: list[str]) -> str | None:
    """The MMSA dataset the checkpoints were trained on (None: not recorded, e.g. before train.train recorded it;
    a run from before then that trained with CH-SIMS's anchors recorded those, and is CH-SIMS);
    checkpoints trained on different ones cannot share one set of metrics."""
    recorded = {settings.get("dataset") or ("sims" if settings.get("labels") == SIMS_SEVEN else None)
                for settings in _training_settings(checkpoints)} - {None}
    if len(recorded) > 1:
        raise MerClipError(f"the checkpoints were trained on different datasets ({', '.join(sorted(recorded))}): "
                           "name one with --dataset")
    return next(iter(recorded), None)


def _training_settings(checkpoints: list[str]) -> list[dict]:
    """Each checkpoint's OUT/train_config.json that exists (a checkpoint copied without it has none)."""
    files = [Path(checkpoint) / "train_config.json" for checkpoint in checkpoints]
    return [json.loads(file.read_text(encoding="utf-8")) for file in files if file.is_file()]


def markdown_report(report: dict) -> str:
    keys = [k for k in report["zero_shot"] if k != "n"]
    lines = [f"# MER-CLIP evaluation: {report['data']} ({report['split']}, n = {report['n']})", "",
             f"Labels: `{report['labels']}`", "", "| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    if report["checkpoints"]:
        std = report.get("std", {})
        cells = [f"{report[k]:.4f}" + (f" ± {std[k]:.4f}" if k in std else "") for k in keys]
        name = "trained" + (f" (mean ± std over {len(report['checkpoints'])} runs)" if std else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| zero-shot (untrained head, CLIP prior) | " + " | ".join(f"{report['zero_shot'][k]:.4f}" for k in keys)
                 + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, path: str | Path) -> str:
    """REPORT.json and REPORT.md beside it; returns the markdown."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    markdown = markdown_report(report)
    out.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return markdown


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = evaluate(args)
    except MerClipError as exc:
        print(f"train.evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(write_report(report, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
