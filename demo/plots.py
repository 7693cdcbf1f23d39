"""The page's figures, drawn with matplotlib from a `Prediction`.

Figures are built with `matplotlib.figure.Figure` (not pyplot), so concurrent
requests never share pyplot's global state and nothing piles up in its registry.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from merclip.result import Prediction, StageAttention

WINNER = "#d62728"
OTHERS = "#8fa8c8"
STAGE_TITLES = {"text": "words of the transcript", "audio": "audio frames (s)", "vision": "video frames (s)"}
MAX_WORD_TICKS = 40  # words are read one by one
MAX_TIME_TICKS = 12  # seconds are read as an axis

# Labels and transcript words are typed by visitors: "$\\frac{a}$" must be drawn as typed,
# not parsed as TeX (a malformed formula would make drawing the figure fail).
matplotlib.rcParams["text.parse_math"] = False


def weighted_cosine(prediction: Prediction) -> list[float]:
    """Each label's raw CLIP cosine, mixed over the modalities by the prior weights used for scoring."""
    total = np.zeros(len(prediction.labels))
    for modality, weight in prediction.prior_weights.items():
        total += weight * np.asarray(prediction.cosines[modality])
    return total.tolist()


def similarity_bars(prediction: Prediction) -> Figure:
    """Labels sorted by probability, the winner highlighted; each bar says probability and raw cosine."""
    order = np.argsort(prediction.probs)  # ascending: barh draws the first at the bottom
    labels = [prediction.labels[i] for i in order]
    probs = [prediction.probs[i] for i in order]
    cosines = weighted_cosine(prediction) if prediction.prior_weights else None
    figure = Figure(figsize=(7, 0.9 + 0.42 * len(labels)), layout="constrained")
    axes = figure.subplots()
    colours = [WINNER if label == prediction.top_label else OTHERS for label in labels]
    bars = axes.barh(labels, probs, color=colours)
    for bar, i in zip(bars, order):
        text = f"{prediction.probs[i]:.1%}" + (f"  cos {cosines[i]:+.3f}" if cosines else "")
        axes.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=9)
    axes.set_xlim(0, min(1.0, max(probs) * 1.35 + 0.05))
    axes.set_xlabel("probability" + ("   (cos: raw CLIP cosine, weighted over " + ", ".join(prediction.prior_weights) + ")"
                                     if cosines else ""))
    axes.set_title(f"Label similarity: {prediction.top_label}", loc="left")
    axes.spines[["top", "right"]].set_visible(False)
    return figure


UNTRAINED = ("This stage reads {modality} through an adapter that has not been trained yet, so its attention means\n"
             "nothing and is not drawn. Load a checkpoint trained with train/ (--checkpoint) to see it.")


def stage_heatmap(stage: StageAttention, labels: Sequence[str]) -> Figure:
    """Attention of one decoder stage: labels as rows, the modality's words or seconds as columns
    (an untrained stage says so instead of drawing numbers that mean nothing)."""
    if not stage.trained:
        figure = Figure(figsize=(8, 1.2), layout="constrained")
        axes = figure.subplots()
        axes.axis("off")
        axes.set_title(f"{stage.name} (untrained)", loc="left")
        axes.text(0, 0.5, UNTRAINED.format(modality=stage.modality), va="center", fontsize=9, color="#555555")
        return figure
    attention = np.asarray(stage.attention, dtype=float)
    columns = attention.shape[1]
    width = float(np.clip(3 + 0.28 * columns, 6, 14)) if stage.modality == "text" else 8.0
    figure = Figure(figsize=(width, 1.4 + 0.35 * len(labels)), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(attention, aspect="auto", cmap="magma", vmin=0.0, vmax=max(float(attention.max()), 1e-6),
                        interpolation="nearest")
    figure.colorbar(image, ax=axes, label="attention", fraction=0.04, pad=0.01)
    axes.set_yticks(range(len(labels)), labels)
    ticks = _tick_positions(columns, MAX_WORD_TICKS if stage.modality == "text" else MAX_TIME_TICKS)
    axes.set_xticks(ticks, [_element_label(stage.elements[i]) for i in ticks],
                    rotation=60 if stage.modality == "text" else 0, ha="right" if stage.modality == "text" else "center",
                    fontsize=8)
    axes.set_xlabel(STAGE_TITLES.get(stage.modality, stage.modality))
    axes.set_title(stage.name, loc="left")
    return figure


def frame_timeline(prediction: Prediction) -> Figure | None:
    """Each label's cosine with each sampled frame over the clip (None without video frames)."""
    if prediction.frame_similarity is None:
        return None
    figure = Figure(figsize=(8, 3.2), layout="constrained")
    axes = figure.subplots()
    for row, label in enumerate(prediction.labels):
        top = label == prediction.top_label
        axes.plot(prediction.frame_times, prediction.frame_similarity[row], marker="o", markersize=3,
                  linewidth=2.5 if top else 1.2, color=WINNER if top else None, label=label)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("cosine with the label")
    axes.set_title("Label similarity per video frame", loc="left")
    axes.legend(fontsize=8, ncol=min(4, len(prediction.labels)), loc="upper left", bbox_to_anchor=(0, -0.25))
    axes.grid(alpha=0.3)
    return figure


def _tick_positions(columns: int, most: int) -> list[int]:
    """All columns when they fit, otherwise at most `most` evenly spread."""
    if columns <= most:
        return list(range(columns))
    return sorted({round(i) for i in np.linspace(0, columns - 1, most)})


def _element_label(element: str | float) -> str:
    return element if isinstance(element, str) else f"{element:.1f}"
