"""`python -m train.reproduce --data PATH --dataset mosi|mosei|sims --out DIR [--clip SPEC] [--epochs N]`.

MMSA's protocol on one of its pickles: train with seeds 1111, 1112 and 1113
(`train.train`, one folder per seed under DIR), evaluate each on the test split
(`train.evaluate`, DIR/report.json), and print the table in MMSA's columns and units:
every metric x 100 (MAE and Corr too, as in MMSA's results table), mean ± standard
deviation over the seeds (numpy's population std, as MMSA's `run.py`). MMSA's published
rows for a few baselines follow, marked as theirs (their features, models and settings;
not run here). The table is also written to DIR/table.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from merclip.clip import DEFAULT_CLIP
from merclip.errors import MerClipError
from train import evaluate as evaluate_module
from train import train as train_module
from train.metrics import DATASETS
from train.mmsa import read_mmsa, which_dataset

SEEDS = (1111, 1112, 1113)
NAMES = {"mosi": "CMU-MOSI", "mosei": "CMU-MOSEI", "sims": "CH-SIMS"}
# MMSA's column names and the keys of train.metrics they come from
COLUMNS = {
    "mosi": (("Has0_acc_2", "acc2_has0"), ("Has0_F1_score", "f1_has0"), ("Non0_acc_2", "acc2_non0"),
             ("Non0_F1_score", "f1_non0"), ("Mult_acc_5", "acc5"), ("Mult_acc_7", "acc7"), ("MAE", "mae"),
             ("Corr", "corr")),
    "sims": (("Mult_acc_2", "mult_acc_2"), ("Mult_acc_3", "mult_acc_3"), ("Mult_acc_5", "mult_acc_5"),
             ("F1_score", "f1"), ("MAE", "mae"), ("Corr", "corr")),
}
PUBLISHED_SOURCE = ("https://github.com/thuiar/MMSA/blob/a239548236c7832d1e3cf4fe4ff55ab6919b5e6f/"
                    "results/result-stat.md")
# Copied as printed there (regression, all "Unaligned"), in the columns above
PUBLISHED = {
    "mosi": {"tfn": "77.99 78.03 79.08 79.06 39.39 34.46 94.73 67.33",
             "lmf": "77.9 78.0 79.18 79.2 38.13 33.82 95.04 65.1",
             "mult": "79.71 79.79 80.98 81.0 42.68 36.91 87.99 70.22",
             "misa": "81.84 81.85 83.54 83.49 47.08 41.37 77.65 77.81",
             "self_mm": "83.0 83.05 84.82 84.81 52.66 46.07 72.44 78.92"},
    "mosei": {"tfn": "78.5 78.05 81.89 82.04 53.1 51.6 57.26 71.41",
              "lmf": "80.54 80.14 83.48 83.6 52.99 51.59 57.57 71.69",
              "mult": "81.15 80.73 84.63 84.73 54.18 52.84 55.93 73.31",
              "misa": "80.67 80.12 84.67 84.68 53.63 52.05 55.75 75.15",
              "self_mm": "81.94 81.62 84.88 85.02 56.06 54.4 53.46 75.87"},
    "sims": {"tfn": "78.38 65.12 39.3 78.62 43.22 59.1",
             "lmf": "77.77 64.68 40.53 77.88 44.12 57.59",
             "mult": "78.56 64.77 37.94 79.66 45.32 56.41",
             "mtfn": "81.09 68.80 40.31 81.01 39.54 66.58",
             "self_mm": "80.04 65.47 41.53 80.44 42.50 59.52"},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train.reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="an MMSA pickle, e.g. MOSI/Processed/unaligned_50.pkl")
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--out", required=True, help="one folder per seed, report.json and table.md go here")
    parser.add_argument("--clip", default=DEFAULT_CLIP, help=f"CLIP SPEC (default {DEFAULT_CLIP})")
    parser.add_argument("--epochs", type=int, default=None, help="default: train.train's")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return parser.parse_args(argv)


def reproduce(args: argparse.Namespace) -> str:
    """Train and evaluate every seed; the table (also written to OUT/table.md)."""
    which_dataset(read_mmsa(args.data), Path(args.data), args.dataset)  # before hours of training: labels refute it
    out = Path(args.out)
    runs = [out / f"seed{seed}" for seed in SEEDS]
    for seed, run in zip(SEEDS, runs):
        flags = ["--data", str(args.data), "--format", "mmsa", "--dataset", args.dataset, "--clip", args.clip,
                 "--seed", str(seed), "--out", str(run), "--device", args.device]
        if train_module.main(flags + ([] if args.epochs is None else ["--epochs", str(args.epochs)])) != 0:
            raise MerClipError(f"training with seed {seed} failed (its error is above)")
    report = evaluate_module.evaluate(evaluate_module.parse_args([
        "--checkpoint", *map(str, runs), "--data", str(args.data), "--format", "mmsa", "--dataset", args.dataset,
        "--split", "test", "--out", str(out / "report.json"), "--device", args.device]))
    evaluate_module.write_report(report, out / "report.json")
    table = mmsa_table(report, args.dataset, args.clip)
    (out / "table.md").write_text(table, encoding="utf-8")
    return table


def mmsa_table(report: dict, dataset: str, clip: str) -> str:
    """The report's seeds as MMSA prints results: x 100, mean ± std, 2 decimals; then MMSA's published rows."""
    columns = COLUMNS["sims" if dataset == "sims" else "mosi"]
    runs = report["runs"]
    ours = [_mean_std([run[key] for run in runs]) for _, key in columns]
    zero_shot = [f"{100 * report['zero_shot'][key]:.2f}" for _, key in columns]
    lines = [f"{NAMES[dataset]}, test split (n = {report['n']}), {len(runs)} seeds ({', '.join(map(str, SEEDS))}): "
             "every column x 100 as in MMSA's results (MAE 72.44 means 0.7244), mean ± std over the seeds.", "",
             "| model | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|",
             f"| MER-CLIP, CLIP {clip} | " + " | ".join(ours) + " |",
             "| MER-CLIP zero-shot (untrained head) | " + " | ".join(zero_shot) + " |"]
    lines += [f"| MMSA {model} (theirs) | " + " | ".join(row.split()) + " |"
              for model, row in PUBLISHED[dataset].items()]
    lines += ["", f"Rows marked (theirs) are MMSA's published results, copied from {PUBLISHED_SOURCE} (unaligned "
              "data; MMSA's own features, models and settings): not run here, a reference rather than a like-for-like "
              "comparison."]
    return "\n".join(lines) + "\n"


def _mean_std(values: list[float]) -> str:
    return f"{100 * np.mean(values):.2f} ± {100 * np.std(values):.2f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        table = reproduce(args)
    except MerClipError as exc:
        print(f"train.reproduce: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
