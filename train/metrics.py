"""Metrics as the field reports them; plain numpy in, plain floats out.

Sentiment (CMU-MOSI/MOSEI, scores in [-3, 3]) follows the MMSA toolkit: Acc-2 and
weighted F1 "has-0" (negative < 0 vs non-negative >= 0) and "non-0" (zero labels
dropped, < 0 vs > 0); Acc-3/5/7 round after clipping to [-1, 1], [-2, 2], [-3, 3];
MAE; Pearson correlation. CH-SIMS (scores in [-1, 1]) has MMSA's own formulas
(`sims_metrics`): both arrays clipped to [-1, 1], then Mult_acc_2/3/5 over MMSA's
class edges, weighted F1 of the two classes, MAE and correlation of the clipped
values. Rounding to an integer, as the MOSI Acc-3/5/7 do, would leave SIMS only
-1, 0 and 1 and make Acc-3, Acc-5 and Acc-7 one number. All fractions, never percentages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, recall_score

SENTIMENT_KEYS = ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5", "acc7", "mae", "corr")
DATASETS = ("mosi", "mosei", "sims")
# MMSA's inner class edges for SIMS; class i holds (edge[i-1], edge[i]] (metricsTop.__eval_sims_regression)
SIMS_EDGES = {2: (0.0,), 3: (-0.1, 0.1), 5: (-0.7, -0.1, 0.1, 0.7)}


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


def sims_metrics(preds: Sequence[float], labels: Sequence[float]) -> dict[str, float]:
    """CH-SIMS regression metrics exactly as MMSA computes them, plus `n`. MMSA compares float32 values
    with its edges, so a score of 0.1 falls in (-0.1, 0.1] (in float64 it would land above the edge)."""
    preds, labels = (np.clip(np.asarray(values, dtype=np.float32), -1, 1) for values in (preds, labels))
    if preds.shape != labels.shape or preds.ndim != 1 or len(preds) == 0:
        raise ValueError(f"expected two equal-length 1-d arrays, got {preds.shape} and {labels.shape}")
    metrics = {}
    for classes, edges in SIMS_EDGES.items():
        bounds = np.asarray(edges, dtype=np.float32)
        pred_class, label_class = (np.searchsorted(bounds, v, side="left") for v in (preds, labels))
        metrics[f"mult_acc_{classes}"] = float(np.mean(pred_class == label_class))
        if classes == 2:
            metrics["f1"] = float(f1_score(label_class, pred_class, average="weighted"))
    preds64, labels64 = preds.astype(np.float64), labels.astype(np.float64)
    metrics["mae"] = float(np.mean(np.abs(preds64 - labels64)))
    constant = np.std(preds64) == 0 or np.std(labels64) == 0
    metrics["corr"] = float("nan") if constant else float(np.corrcoef(preds64, labels64)[0, 1])
    return {**metrics, "n": int(len(labels))}


def regression_metrics(preds: Sequence[float], labels: Sequence[float], dataset: str = "mosi") -> dict[str, float]:
    """The dataset's own metrics: MMSA scores CH-SIMS differently from MOSI and MOSEI."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    return sims_metrics(preds, labels) if dataset == "sims" else sentiment_metrics(preds, labels)


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
