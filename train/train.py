"""`python -m train.train --config FILE` or `--data PATH --format mmsa|manifest [--dataset mosi|mosei|sims] --clip SPEC
--epochs N --seed S --out DIR`.

Trains the MER-CLIP head on cached features (CLIP stays frozen): AdamW, linear warm-up
then cosine decay, gradient clipping, mixed precision on CUDA, early stopping on the
validation loss. OUT/model.safetensors + OUT/config.json is the kept model (what
`app.py --checkpoint OUT` loads: the epoch of lowest validation loss, see `improves`, where the warm-up
epochs give way to the first epoch after it, see `Progress.kept_in_warmup`);
OUT/last holds everything needed to resume exactly. Both record which stages training
trained (`ModelConfig.trained_stages`: reached by a batch with their modality, and changed),
so inference can leave out a stage it never touched.
`--seed S` draws the head's initialisation and the batch order. The same command runs single-process or under `torchrun` (DistributedDataParallel:
gloo on CPU, nccl on GPU).

`--dataset` names an MMSA pickle's dataset, which sets the label anchors (CH-SIMS's on [-1, 1]); without it
the pickle is MOSI/MOSEI, never guessed from the label range (labels outside the dataset's range are an
error: [-1, 1] for sims, [-3, 3] for mosi and mosei). OUT/train_config.json records the dataset used, so `train.evaluate` scores with its metrics.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from merclip.api import MerClip, build_head, changed_stages
from merclip.clip import load_clip
from merclip.errors import MerClipError
from merclip.head import CONFIG_FILE, MerClipHead, read_checkpoint_config, save_checkpoint
from merclip.labels import MODALITIES
from train.config import TrainConfig, load_config
from train.data import FeatureSet, Sample, collate, epoch_order, targets_tensor
from train.distributed import Distributed
from train.metrics import classification_metrics, sentiment_metrics
from train.resume import load_training_state, save_training_state
from train.scoring import Scorer
from train.sources import load_data

LOG_FILE = "log.csv"
LOG_COLUMNS = ("epoch", "step", "train_loss", "valid_loss", "valid_metric", "kept", "lr", "seconds")
AfterEpoch = Callable[[int, Path, bool], None]


@dataclass
class Progress:
    """Where training stands; saved with OUT/last so a resumed run continues from here."""

    epoch: int = 0
    step: int = 0
    best_loss: float | None = None  # the kept checkpoint's validation loss
    kept_epoch: int = 0
    bad_epochs: int = 0  # epochs since the validation loss last improved (by more than the minimum)
    # Whether the kept epoch ended within the learning-rate warm-up. Such an epoch is kept only until the first
    # epoch after the warm-up, which replaces it whatever its loss: a few steps at a fraction of the rate barely
    # move the head from zero-shot, and at 80 training samples (20 valid) a lucky validation loss kept the first
    # warm-up epoch (3 steps) in 3 of 5 seeds of issue 33's sign x sign, losing .036-.090 test corr to the best.
    kept_in_warmup: bool = False
    # stages whose modality some training batch had (in stage order); None: not recorded (a run begun before the
    # record: the weights alone decide which stages trained, as then)
    reached: list[str] | None = field(default_factory=list)

    @classmethod
    def from_saved(cls, saved: dict) -> Progress:
        """A saved progress; keys it does not know (an older run's `best`, a metric) are not read."""
        progress = cls(**{f.name: saved[f.name] for f in fields(cls) if f.name in saved})
        if "reached" not in saved:
            progress.reached = None  # its earlier batches are not known: an empty record would untrain every stage
        return progress

    def reach(self, batch: list[Sample], stages: tuple[str, ...]) -> None:
        """Record the stages whose modality this (whole, not the rank's share) batch has: every rank agrees."""
        if self.reached is not None:
            present = present_modalities(batch)
            self.reached = [m for m in stages if m in self.reached or m in present]


def present_modalities(samples: list[Sample]) -> set[str]:
    """The modalities with at least one element in some sample: those whose mask has a True in a batch of them."""
    return {m for m in MODALITIES for s in samples if (value := getattr(s.features, m)) is not None and len(value)}


def trained_stages(head: MerClipHead, seed: int, reached: list[str] | None) -> tuple[str, ...]:
    """The stages that training data with their modality reached and that changed. Changed alone is not
    enough: a stage whose modality is there with no elements (every mask False) runs and gets a zero
    gradient, and AdamW's weight decay then moves its weights all the same."""
    changed = changed_stages(head, seed)
    return changed if reached is None else tuple(m for m in changed if m in reached)


def validation_metric(task: str) -> tuple[str, bool]:
    """The task metric logged beside the validation loss (log.csv `valid_metric`), and whether higher is
    better. Model selection and early stopping watch the loss (see `improves`), not this metric."""
    return ("mae", False) if task == "regression" else ("accuracy", True)


def improves(loss: float, best: float | None, config: TrainConfig) -> bool:
    """Whether a validation loss is better than the best so far by more than the minimum improvement:
    `--min-delta` (absolute) or `--min-delta-rel` times the best (relative), whichever is larger, so
    0.803059 -> 0.803058 is not progress.

    Why the loss (the one training minimises, on the valid split, with the averaged label embeddings,
    no augmentation) rather than the task metric, or the metric with the loss breaking ties: for
    regression the loss is the validation MAE, the metric itself. For classification, accuracy on a
    small split moves in coarse steps and can be perfect by chance while the model is still at chance
    level. Issue 28's manifest (48/12/20 clips, the class picture in 2 of 8 frames), rebuilt here with
    clip draw 1 and seed 1: the old rule (any strict rise of validation accuracy) kept epoch 5, 12 of
    12 right at a training loss of 0.69, stopped at epoch 10 and scored 0.80 on test against 1.00 for
    its last epoch (the issue's machine: epoch 4, 0.65). Over 9 runs of that case (2 draws of the
    clips, 3 and 6 seeds) the loss and the metric-with-loss-tie-break kept the same epoch every time,
    the best epoch on test; the old rule lost 0.1 to 0.2 in 4 of them. A tie-break still keeps a lucky
    epoch that no later epoch equals (12 of 12, then 11 of 12 for good); cross-entropy moves with every
    sample's confidence and is not lucky that way. `python -m train.learning` reports, per case and
    seed, the kept checkpoint's test score against the best epoch's and the old rule's."""
    if best is None or not math.isfinite(best):
        return math.isfinite(loss)
    return best - loss > max(config.min_delta, config.min_delta_rel * abs(best))


def validate(scorer: Scorer, head: MerClipHead, samples: list, batch_size: int = 64) -> tuple[np.ndarray, float]:
    """Predictions (scores or class indices) and the mean training loss on `samples`: no label
    augmentation (every template and synonym averaged, as at inference), no autocast."""
    embeddings = scorer.embeddings()
    device = scorer.model.device
    predictions, losses = [], []
    head.eval()
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            chunk = samples[start: start + batch_size]
            logits = head(collate(chunk, device), embeddings, scorer.model.clip.logit_scale,
                          scorer.model.clip.logit_bias).logits
            losses.append(scorer.loss(logits, targets_tensor(chunk, scorer.task, device)))
            out = scorer.outputs(logits)
            predictions.append(out if scorer.task == "regression" else out.argmax(dim=-1))
    return torch.cat(predictions).cpu().numpy(), float(torch.cat(losses).mean())


def task_metrics(task: str, preds, targets, labels: list[str]) -> dict[str, float]:
    if task == "regression":
        return sentiment_metrics(preds, targets)
    return classification_metrics(targets, preds, labels)


# The attention temperatures learn at this multiple of the learning rate, without weight decay. Adam moves
# each weight by about the learning rate per step, so at 1e-3 a temperature could move e^0.8 in a whole run
# (800 steps at CMU-MOSI's size): an adapted stage starting near a plain mean (merclip.head.network's
# ADAPTED_TEMPERATURE) could never sharpen onto the few frames that carry a signal. Measured with
# `python -m train.interactions` (frame-local sign x sign, 1284 samples, seed 0, lr 1e-3): test corr .39 at 1x, .55
# at 10x and 30x; where every frame carries the signal the temperature fell instead (sign x sign: 1 -> 0.34).
TEMPERATURE_LR_SCALE = 30.0


def parameter_groups(head: MerClipHead) -> list[dict]:
    """The optimiser's groups: every weight but the attention temperatures, then those (see TEMPERATURE_LR_SCALE)."""
    named = [(name, p) for name, p in head.named_parameters() if p.requires_grad]
    temperatures = [p for name, p in named if name.endswith(".log_tau")]
    return [{"params": [p for name, p in named if not name.endswith(".log_tau")], "lr_scale": 1.0},
            {"params": temperatures, "lr_scale": TEMPERATURE_LR_SCALE, "weight_decay": 0.0}]


def warmup_steps(config: TrainConfig, total_steps: int) -> int:
    return max(1, round(config.warmup * total_steps))


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warm-up over `warmup` of all steps, then cosine decay to zero."""
    warmup = warmup_steps(config, total_steps)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(config: TrainConfig, after_epoch: AfterEpoch | None = None) -> Path:
    """Run (or resume) training; returns the output folder. `after_epoch(epoch, OUT/last, kept)` is called
    by the main process after each epoch's checkpoints are written (e.g. to score each epoch on test
    data in `train.learning`: it reads the files, so it cannot change what training does)."""
    dist = Distributed.start(config.device)
    try:
        return _train(config, dist, after_epoch)
    finally:
        dist.stop()


def _train(config: TrainConfig, dist: Distributed, after_epoch: AfterEpoch | None = None) -> Path:
    out = Path(config.out)
    clip = load_clip(config.clip, str(dist.device))
    data = load_data(config.data, config.format, clip, show_progress=config.progress and dist.main,
                     dataset=config.dataset or None)
    model_config = data.model_config(clip)
    if config.stages:
        model_config = replace(model_config, stage_order=tuple(m.strip() for m in config.stages.split(",") if m.strip()))
    model_config = replace(model_config, attention=config.attention)
    if config.resume and (out / "last" / CONFIG_FILE).is_file():
        # a run begun before the readout's interaction features goes on with the readout it began with
        saved = read_checkpoint_config(out / "last")
        model_config = replace(model_config, interaction_features=saved.interaction_width, attention=saved.attention)
    model = MerClip(clip, build_head(model_config, config.seed))
    head = model.head.train()
    labels = config.labels or data.labels
    scorer = Scorer(model, labels, data.task)
    train_set, valid_set = _splits(data)
    optimiser = torch.optim.AdamW(parameter_groups(head), lr=config.lr, weight_decay=config.weight_decay)
    progress = Progress()
    if config.resume:
        progress = Progress.from_saved(load_training_state(out / "last", head, optimiser))
    trainable = dist.wrap(head)
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and dist.device.type == "cuda")
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    metric_name, _ = validation_metric(data.task)
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        # the dataset used (mosi when none was named; None for a manifest), for train.evaluate's metrics
        settings = {**asdict(config), "labels": labels, "task": data.task, "dataset": data.source.get("dataset")}
        (out / "train_config.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
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
            progress.reach([train_set[i] for i in batch_indices], model_config.stage_order)
            for group in optimiser.param_groups:
                group["lr"] = group["lr_scale"] * learning_rate(config, progress.step, total_steps)
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
        predictions, valid_loss = validate(scorer, head, valid_set)
        head.train()
        value = task_metrics(data.task, predictions, scorer.targets(valid_set), scorer.labels.names)[metric_name]
        warming_up = config.warmup > 0 and progress.step <= warmup_steps(config, total_steps)
        replaces_warmup_epoch = progress.kept_in_warmup and not warming_up
        improved = improves(valid_loss, None if replaces_warmup_epoch else progress.best_loss, config)
        progress.epoch += 1
        epochs_this_run += 1
        if improved:
            progress.best_loss, progress.kept_epoch, progress.kept_in_warmup = valid_loss, progress.epoch, warming_up
        progress.bad_epochs = 0 if improved else progress.bad_epochs + 1
        if dist.main:
            saved_config = replace(model_config, trained_stages=trained_stages(head, config.seed, progress.reached))
            if improved:
                save_checkpoint(out, head, saved_config)
            save_training_state(out / "last", head, saved_config, optimiser, asdict(progress))
        logger.write(progress, sum(losses) / max(1, len(losses)), valid_loss, value, improved,
                     optimiser.param_groups[0]["lr"], time.perf_counter() - started)
        if dist.main and after_epoch is not None:
            after_epoch(progress.epoch, out / "last", improved)
        if (progress.bad_epochs >= config.patience and progress.epoch >= config.min_epochs
                and progress.step >= config.min_steps):
            print(f"train: no lower validation loss for {config.patience} epochs: stopping (kept epoch "
                  f"{progress.kept_epoch})", file=sys.stderr)
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

    def write(self, progress: Progress, train_loss: float, valid_loss: float, valid_metric: float, kept: bool,
              lr: float, seconds: float) -> None:
        if not self.enabled:
            return
        row = (progress.epoch, progress.step, round(train_loss, 6), round(valid_loss, 6), round(valid_metric, 6),
               int(kept), lr, round(seconds, 2))
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(row)
        if self.board is not None:
            self.board.add_scalar("train/loss", train_loss, progress.epoch)
            self.board.add_scalar("valid/loss", valid_loss, progress.epoch)
            self.board.add_scalar("valid/metric", valid_metric, progress.epoch)
        print(f"epoch {progress.epoch}: train loss {train_loss:.4f}, valid loss {valid_loss:.4f}, valid metric "
              f"{valid_metric:.4f}{' (kept)' if kept else ''}, {seconds:.1f} s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    try:
        config = load_config(argv)
        if not config.data:
            raise MerClipError("--data is required (an MMSA pickle or a folder from train.extract)")
        out = train(config)
    except MerClipError as exc:
        print(f"train.train: error: {exc}", file=sys.stderr)
        return 2
    print(f"train: kept model in {out} (load it with: python app.py --checkpoint {out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
