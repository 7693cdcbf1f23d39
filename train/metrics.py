"""Metrics as the field reports them; plain numpy in, plain floats out.

Sentiment (CMU-MOSI/MOSEI, scores in [-3, 3]) follows the MMSA toolkit: Acc-2 and
weighted F1 "has-0" (negative < 0 vs non-negative >= 0) and "non-0" (zero labels
dropped, < 0 vs > 0); Acc-3/5/7 round after clipping to [-1, 1], [-2, 2], [-3, 3];
MAE; Pearson correlation. All fractions, never percentages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score

SENTIMENT_KEYS = ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5", "acc7", "mae", "corr")


def sentiment_metrics(preds: Sequence[float], labels: Sequence[float]) -> dict[str, float]:
    """The MOSI/MOSEI regression metrics, plus `n`."""
    preds, labels = np.asarray(preds, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if preds.shape != labels.shape or preds.ndim != 1 or len(preds) == 0:
        raise ValueError(f"expected two equal-length 1-d arrays, got {preds.shape} and {labels.shape}")
    non_zero = labels != 0
    metrics = {
        "acc2_has0": accuracy_score(labels >= 0, preds >= 0),
        "f1_has0": f1_score(labels >= 0, preds >= 0, average="weighted"),
        "acc2_non0": accuracy_score(labels[non_zero] > 0, preds[non_zero] > 0) if non_zero.any() else float("nan"),
        "f1_non0": f1_score(labels[non_zero] > 0, preds[non_zero] > 0, average="weighted") if non_zero.any() else float("nan"),
    }
    for classes, bound in ((3, 1), (5, 2), (7, 3)):
        metrics[f"acc{classes}"] = float(np.mean(np.round(np.clip(preds, -bound, bound)) ==
                                                 np.round(np.clip(labels, -bound, bound))))
    metrics["mae"] = float(np.mean(np.abs(preds - labels)))
    constant = np.std(preds) == 0 or np.std(labels) == 0
    metrics["corr"] = float("nan") if constant else float(np.corrcoef(preds, labels)[0, 1])
    return {**{k: float(v) for k, v in metrics.items()}, "n": int(len(labels))}


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, weighted F1 and unweighted average recall (UAR) over the given classes, plus `n`."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = list(range(len(labels)))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0)),
        "uar": float(recall_score(y_true, y_pred, labels=[c for c in classes if c in set(y_true.tolist())],
                                  average="macro", zero_division=0)),
        "n": int(len(y_true)),
    }


def aggregate(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation (population, as over seeds) of each metric across runs."""
    keys = [k for k in runs[0] if k != "n"]
    return {k: {"mean": float(np.mean([r[k] for r in runs])), "std": float(np.std([r[k] for r in runs]))} for k in keys}
