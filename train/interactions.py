"""`python -m train.interactions [--out DIR] [--full | --quick] [--seeds N]`: does the head find cross-modal
interactions that plain learners on pooled features find, and win where the signal lives in a few frames?

For each generator (train/interaction_cases.py), training size and seed, it draws train, valid and a
2000-sample test split from the same generator (the seed draws the data and the head's
initialisation), trains the head with default options (`train.train`, tiny random CLIP: the voice
and face features are the dataset's own, so CLIP's weights do not matter here), trains the head
with mean pooling in place of the decoder's attention (the ablation), fits the pooled baselines
(train/baselines.py) and scores all of them on test. Each cell is saved as it finishes
(DIR/cells/*.json, with the training settings it ran with: a cell saved under other settings
is computed again), so a stopped run resumes where it was; DIR/interactions.md and
DIR/interactions.json hold the table: every cell mean ± sd over seeds with a 95% percentile
bootstrap interval of the mean over seeds (with 5 seeds such an interval is narrow: it held
the true mean ~85% of the time in simulation), and, for the head, the regret of model
selection: the best epoch's test corr minus that of the epoch a rule keeps (the kept
checkpoint, the last epoch trained, a fixed epoch).

Default grid (~30 min on 2 cores): sign x sign, frame-local sign x sign and null at 400 and 1284
training samples, 5 seeds. `--full` runs every generator at 80, 400, 1284 and 5000 (hours).
`--quick` (CI) runs every generator once at 80 samples with 3 epochs (tests/test_interactions.py pins
each generator's oracle).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from merclip.errors import MerClipError
from merclip.head import ADAPTED_TEMPERATURE
from train.baselines import BASELINES, baseline_scores
from train.config import TrainConfig
from train.interaction_cases import GENERATORS, Split, corr, pooled
from train.learning import TINY, Outcome, run_case
from train.train import TEMPERATURE_LR_SCALE

SIZES = (80, 400, 1284, 5000)
TEST_SIZE = 2000
DEFAULT_GENERATORS = ("sign x sign", "frame-local sign x sign", "null")
DEFAULT_SIZES = (400, 1284)
FIXED_EPOCH = 10  # the "fixed epoch" rule keeps this epoch (train.train's --min-epochs: every run reaches it)
HEAD, ABLATION = "head", "head, mean pooling (no attention)"
LEARNERS = (HEAD, ABLATION, *BASELINES)


def valid_size(train_size: int) -> int:
    """CMU-MOSI's 229, except 20 beside 80 training samples (a small dataset's small valid split)."""
    return 20 if train_size <= 80 else 229


def draw(generator: str, size: int, seed: int) -> dict[str, Split]:
    """The three splits of one cell, from (generator, size, seed) alone."""
    rng = np.random.default_rng([seed, size, sorted(GENERATORS).index(generator)])
    make = GENERATORS[generator]
    return {"train": make(rng, size), "valid": make(rng, valid_size(size)), "test": make(rng, TEST_SIZE)}


def write_pickle(path: Path, splits: dict[str, Split]) -> dict[str, dict]:
    """The splits as an MMSA pickle with no words (the text stage has nothing to read), and the frames
    that carry each sample's signal, by sample id."""
    data, carried = {}, {}
    for name, split in splits.items():
        ids = [f"{name}-{i}" for i in range(len(split.scores))]
        carried.update({sample: where for sample, where in zip(ids, split.carried) if where})
        data[name] = {"raw_text": np.array([""] * len(ids)), "audio": split.audio, "vision": split.vision,
                      "id": np.array(ids), "regression_labels": split.scores.astype(np.float32),
                      "audio_lengths": np.full(len(ids), split.audio.shape[1]),
                      "vision_lengths": np.full(len(ids), split.vision.shape[1])}
    with open(path, "wb") as handle:
        pickle.dump(data, handle)
    return carried


@dataclass
class HeadRun:
    """One head trained on one cell: the kept checkpoint's test corr and each epoch's."""

    corr: float
    epoch_scores: list[float]
    kept_epoch: int
    attention_share: dict[str, float]
    trained_stages: list[str] | None
    seconds: float

    @classmethod
    def of(cls, outcome: Outcome, seconds: float) -> HeadRun:
        return cls(_finite(outcome.trained), [_finite(s) for s in outcome.epoch_scores], outcome.kept_epoch,
                   outcome.attention_share, list(outcome.trained_stages or ()), seconds)

    def regret(self, rule: str) -> float:
        """The best epoch's test corr minus that of the epoch `rule` keeps (kept | last trained | fixed), 0 or
        more; nan where nothing was kept (every validation loss non-finite)."""
        epoch = {"kept": self.kept_epoch, "last": len(self.epoch_scores),
                 "fixed": min(FIXED_EPOCH, len(self.epoch_scores))}[rule]
        return max(self.epoch_scores) - self.epoch_scores[epoch - 1] if epoch >= 1 else float("nan")


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else float(value)


def run_cell(folder: Path, generator: str, size: int, seed: int, epochs: int | None = None) -> dict:
    """One cell (generator, size, seed): oracle, baselines, head and ablation on the same splits."""
    started = time.perf_counter()
    splits = draw(generator, size, seed)
    work = folder / "work" / f"{_slug(generator)}-{size}-s{seed}"
    work.mkdir(parents=True, exist_ok=True)
    carried = write_pickle(work / "data.pkl", splits)
    cell = {"generator": generator, "size": size, "seed": seed,
            "oracle": corr(splits["test"].oracle, splits["test"].scores)}
    cell.update(baseline_scores(*((pooled(splits[s]), splits[s].scores) for s in ("train", "valid", "test"))))
    extra = ["--epochs", str(epochs)] if epochs else []
    for learner, flags in ((HEAD, extra), (ABLATION, extra + ["--no-attention"])):
        begun = time.perf_counter()
        outcome = run_case(learner, work / "data.pkl", "mmsa", carried, work / _slug(learner), TINY, seed=seed,
                           extra=flags)
        run = HeadRun.of(outcome, time.perf_counter() - begun)
        cell[learner] = run.corr
        cell[f"{learner} run"] = asdict(run)
    cell["seconds"] = time.perf_counter() - started
    return cell


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def settings(epochs: int | None) -> dict:
    """What a cell's head figures depend on besides its data: a saved cell under other settings is stale."""
    defaults = TrainConfig()
    return {"lr": defaults.lr, "weight_decay": defaults.weight_decay, "epochs": epochs or defaults.epochs,
            "warmup": defaults.warmup, "temperature_lr_scale": TEMPERATURE_LR_SCALE,
            "adapted_temperature": ADAPTED_TEMPERATURE}


def run_grid(folder: Path, generators: list[str], sizes: list[int], seeds: int, epochs: int | None = None
             ) -> list[dict]:
    """Every cell, each read from DIR/cells if a run already saved it under the same settings, else computed
    and saved at once (its training folder then removed: `--full` would leave gigabytes)."""
    cells_dir = folder / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    cells = []
    for generator in generators:
        for size in sizes:
            for seed in range(seeds):
                path = cells_dir / f"{_slug(generator)}-{size}-s{seed}{f'-e{epochs}' if epochs else ''}.json"
                if path.is_file():
                    saved = json.loads(path.read_text(encoding="utf-8"))
                    if saved.get("settings") == settings(epochs):
                        cells.append(saved)
                        continue
                cell = {**run_cell(folder, generator, size, seed, epochs), "settings": settings(epochs)}
                _write_atomically(path, json.dumps(cell, indent=1))
                shutil.rmtree(folder / "work" / f"{_slug(generator)}-{size}-s{seed}", ignore_errors=True)
                print(f"{generator}, {size} samples, seed {seed}: head {cell[HEAD]:.3f}, best pooled "
                      f"{max(cell[b] for b in BASELINES):.3f}, oracle {cell['oracle']:.3f} "
                      f"({cell['seconds']:.0f} s)", file=sys.stderr, flush=True)
                cells.append(cell)
    return cells


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def summary(values: list[float], resamples: int = 2000) -> dict[str, float]:
    """Mean, sd (population, as train.evaluate reports) and the 95% percentile bootstrap interval of the
    mean over seeds (resampled with a fixed generator: the same cells give the same table)."""
    data = np.asarray(values, dtype=float)
    means = np.random.default_rng(0).choice(data, (resamples, len(data))).mean(axis=1)
    return {"mean": float(data.mean()), "sd": float(data.std()), "low": float(np.percentile(means, 2.5)),
            "high": float(np.percentile(means, 97.5)), "n": len(data)}


def _groups(cells: list[dict]) -> dict[tuple[str, int], list[dict]]:
    groups: dict[tuple[str, int], list[dict]] = {}
    for cell in cells:
        groups.setdefault((cell["generator"], cell["size"]), []).append(cell)
    return groups


def aggregate(cells: list[dict]) -> list[dict]:
    """One row per (generator, size): every learner's summary, and the head's model-selection regrets."""
    rows = []
    for (generator, size), group in _groups(cells).items():
        runs = [HeadRun(**c[f"{HEAD} run"]) for c in group]
        rows.append({
            "generator": generator, "size": size, "valid": valid_size(size), "test": TEST_SIZE,
            "seconds": sum(c["seconds"] for c in group),
            "oracle": summary([c["oracle"] for c in group]),
            "learners": {name: summary([c[name] for c in group]) for name in LEARNERS},
            "regret": {rule: summary([r.regret(rule) for r in runs]) for rule in ("kept", "last", "fixed")},
            "kept_epochs": [r.kept_epoch for r in runs],
            "attention": {m: float(np.mean([r.attention_share.get(m, np.nan) for r in runs]))
                          for m in runs[0].attention_share},
        })
    return rows


def _cell(s: dict[str, float]) -> str:
    return f"{s['mean']:.3f} ± {s['sd']:.3f} [{s['low']:.2f}, {s['high']:.2f}]"


def markdown(rows: list[dict]) -> str:
    """The learners' table (test corr) and the model-selection table (test corr regret against the best epoch)."""
    seeds = max(r["oracle"]["n"] for r in rows)
    head = ["generator", "train / valid / test", "oracle", *LEARNERS]
    lines = [f"Test corr, mean ± sd over {seeds} seed{'s' * (seeds > 1)} [95% percentile bootstrap interval of the "
             "mean over seeds]",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append(f"| {r['generator']} | {r['size']} / {r['valid']} / {r['test']} | {_cell(r['oracle'])} | "
                     + " | ".join(_cell(r["learners"][name]) for name in LEARNERS) + " |")
    lines += ["", f"Model selection of the head: regret, the best epoch's test corr minus that of the epoch each "
              f"rule keeps (fixed: epoch {FIXED_EPOCH}, or the last if the run stopped before it)", "",
              "| generator | train | kept | last epoch trained | fixed epoch | kept epochs | attention on carrying frames "
              "(x uniform) | runtime (all seeds) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        attention = ", ".join(f"{m} {v:.1f}x" for m, v in r["attention"].items()) or "-"
        lines.append(f"| {r['generator']} | {r['size']} | " + " | ".join(_cell(r["regret"][rule])
                     for rule in ("kept", "last", "fixed"))
                     + f" | {', '.join(map(str, r['kept_epochs']))} | {attention} | {r['seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.interactions", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/interactions", help="cells, table and JSON go here (resumes)")
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument("--full", action="store_true", help="every generator at 80, 400, 1284 and 5000 (hours)")
    grid.add_argument("--quick", action="store_true", help="every generator once at 80 samples, 3 epochs (CI)")
    parser.add_argument("--generators", default=None, help=f"comma-separated, of: {', '.join(GENERATORS)}")
    parser.add_argument("--sizes", default=None, help="comma-separated training sizes")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 5; --quick 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as train.learning)")
    args = parser.parse_args(argv)
    generators = (args.generators.split(",") if args.generators else
                  list(GENERATORS) if args.full or args.quick else list(DEFAULT_GENERATORS))
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes else
             [80] if args.quick else list(SIZES) if args.full else list(DEFAULT_SIZES))
    seeds = args.seeds or (1 if args.quick else 5)
    unknown = [g for g in generators if g not in GENERATORS]
    if unknown or min(sizes) < 2 or seeds < 1:
        parser.error(f"unknown generators {unknown}" if unknown else "sizes must be 2 or more and --seeds 1 or more")
    torch.set_num_threads(args.threads)
    folder = Path(args.out)
    started = time.perf_counter()
    try:
        rows = aggregate(run_grid(folder, generators, sizes, seeds, epochs=3 if args.quick else None))
    except MerClipError as exc:
        print(f"train.interactions: error: {exc}", file=sys.stderr)
        return 2
    table = markdown(rows)
    (folder / "interactions.md").write_text(table + "\n", encoding="utf-8")
    (folder / "interactions.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(table)
    print(f"\n{len(rows)} rows in {(time.perf_counter() - started) / 60:.1f} min; {folder / 'interactions.md'}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
