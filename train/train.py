"""`python -m train.train --config FILE` or `--data PATH --format mmsa|manifest --clip SPEC --epochs N --seed S --out DIR`.

Trains the MER-CLIP head on cached features (CLIP stays frozen): AdamW, linear warm-up
then cosine decay, gradient clipping, mixed precision on CUDA, early stopping on the
validation metric. OUT/model.safetensors + OUT/config.json is the best model (what
`app.py --checkpoint OUT` loads); OUT/last holds everything needed to resume exactly.
The same command runs single-process or under `torchrun` (DistributedDataParallel:
gloo on CPU, nccl on GPU).
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm import tqdm

from merclip.api import MerClip, build_head
from merclip.checkpoint import save_checkpoint
from merclip.clip_loader import load_clip
from merclip.errors import MerClipError
from train.config import TrainConfig, load_config
from train.data import FeatureSet, collate, epoch_order, targets_tensor
from train.distributed import Distributed
from train.metrics import classification_metrics, sentiment_metrics
from train.resume import load_training_state, save_training_state
from train.scoring import Scorer
from train.sources import load_data

LOG_FILE = "log.csv"
LOG_COLUMNS = ("epoch", "step", "train_loss", "valid_metric", "lr", "seconds")


@dataclass
class Progress:
    """Where training stands; saved with OUT/last so a resumed run continues from here."""

    epoch: int = 0
    step: int = 0
    best: float | None = None
    bad_epochs: int = 0


def validation_metric(task: str) -> tuple[str, bool]:
    """The metric early stopping watches, and whether higher is better."""
    return ("mae", False) if task == "regression" else ("accuracy", True)


def task_metrics(task: str, preds, targets, labels: list[str]) -> dict[str, float]:
    if task == "regression":
        return sentiment_metrics(preds, targets)
    return classification_metrics(targets, preds, labels)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warm-up over `warmup` of all steps, then cosine decay to zero."""
    warmup = max(1, round(config.warmup * total_steps))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(config: TrainConfig) -> Path:
    """Run (or resume) training; returns the output folder."""
    dist = Distributed.start(config.device)
    try:
        return _train(config, dist)
    finally:
        dist.stop()


def _train(config: TrainConfig, dist: Distributed) -> Path:
    out = Path(config.out)
    clip = load_clip(config.clip, str(dist.device))
    data = load_data(config.data, config.format, clip, show_progress=config.progress and dist.main)
    model_config = data.model_config(clip)
    if config.stages:
        model_config = replace(model_config, stage_order=tuple(m.strip() for m in config.stages.split(",") if m.strip()))
    model = MerClip(clip, build_head(model_config))
    head = model.head.train()
    labels = config.labels or data.labels
    scorer = Scorer(model, labels, data.task)
    train_set, valid_set = _splits(data)
    optimiser = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)
    progress = Progress()
    if config.resume:
        progress = Progress(**load_training_state(out / "last", head, optimiser))
    trainable = dist.wrap(head)
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and dist.device.type == "cuda")
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    metric_name, higher_is_better = validation_metric(data.task)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps({**asdict(config), "labels": labels, "task": data.task},
                                                          indent=2), encoding="utf-8")
    logger = _Logger(out, enabled=dist.main, append=config.resume)
    epochs_this_run = 0
    while progress.epoch < config.epochs:
        started = time.perf_counter()
        order = epoch_order(len(train_set), config.seed, progress.epoch)
        losses = []
        batches = range(0, len(order), config.batch_size)
        for start in tqdm(batches, desc=f"epoch {progress.epoch + 1}/{config.epochs}", leave=False,
                          disable=not (config.progress and dist.main)):
            batch_indices = order[start: start + config.batch_size]
            if len(batch_indices) < dist.world:
                continue  # every rank needs at least one sample; all ranks skip together
            mine = [train_set[i] for i in batch_indices[dist.rank::dist.world]]
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(config, progress.step, total_steps)
            generator = (torch.Generator().manual_seed(config.seed * 1_000_003 + progress.step)
                         if config.label_augment else None)
            embeddings = scorer.embeddings(generator)
            with torch.autocast(dist.device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
                logits = trainable(collate(mine, dist.device), embeddings, clip.logit_scale, clip.logit_bias).logits
            per_sample = scorer.loss(logits, targets_tensor(mine, data.task, dist.device))
            # Sum over this rank's share / global batch size, times world: DDP's gradient
            # average then equals the gradient of the mean over the whole batch.
            loss = per_sample.sum() * dist.world / len(batch_indices)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)
            torch.nn.utils.clip_grad_norm_(head.parameters(), config.grad_clip)
            scaler.step(optimiser)
            scaler.update()
            losses.append(per_sample.mean().item())
            progress.step += 1
        metrics = task_metrics(data.task, scorer.predict(head, valid_set), scorer.targets(valid_set), scorer.labels.names)
        head.train()
        value = metrics[metric_name]
        improved = progress.best is None or (value > progress.best if higher_is_better else value < progress.best)
        progress.best = value if improved else progress.best
        progress.bad_epochs = 0 if improved else progress.bad_epochs + 1
        progress.epoch += 1
        epochs_this_run += 1
        if dist.main:
            if improved:
                save_checkpoint(out, head, model_config)
            save_training_state(out / "last", head, model_config, optimiser, asdict(progress))
        logger.write(progress, sum(losses) / max(1, len(losses)), value, optimiser.param_groups[0]["lr"],
                     time.perf_counter() - started)
        if progress.bad_epochs >= config.patience and progress.epoch >= config.min_epochs:
            print(f"train: no better validation {metric_name} for {config.patience} epochs: stopping", file=sys.stderr)
            break
        if config.stop_after and epochs_this_run >= config.stop_after:
            break
    dist.barrier()
    return out


def _splits(data: FeatureSet) -> tuple[list, list]:
    train_set, valid_set = data.split("train"), data.split("valid")
    if not train_set:
        raise MerClipError("the data has no 'train' split")
    if not valid_set:
        raise MerClipError("the data has no 'valid' split (early stopping and the best checkpoint need one)")
    return train_set, valid_set


class _Logger:
    """log.csv (and TensorBoard when it is installed), written by the main process only."""

    def __init__(self, out: Path, enabled: bool, append: bool) -> None:
        self.enabled = enabled
        self.path = out / LOG_FILE
        self.board = None
        if not enabled:
            return
        if not (append and self.path.exists()):
            with open(self.path, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow(LOG_COLUMNS)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            self.board = None

    def write(self, progress: Progress, train_loss: float, valid_metric: float, lr: float, seconds: float) -> None:
        if not self.enabled:
            return
        row = (progress.epoch, progress.step, round(train_loss, 6), round(valid_metric, 6), lr, round(seconds, 2))
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(row)
        if self.board is not None:
            self.board.add_scalar("train/loss", train_loss, progress.epoch)
            self.board.add_scalar("valid/metric", valid_metric, progress.epoch)
        print(f"epoch {progress.epoch}: train loss {train_loss:.4f}, valid {valid_metric:.4f}, {seconds:.1f} s",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config(argv)
        if not config.data:
            raise MerClipError("--data is required (an MMSA pickle or a folder from train.extract)")
        out = train(config)
    except MerClipError as exc:
        print(f"train.train: error: {exc}", file=sys.stderr)
        return 2
    print(f"train: best model in {out} (load it with: python app.py --checkpoint {out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
