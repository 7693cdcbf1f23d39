"""The first figure: which label fits best, as bars of the labels' probabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import ScaledTranslation

from demo.figures.layout import (MAX_LABEL_WIDTH, OUTLINE, PAD, ROW, SMALL, WIDTH, colour_key, colours_of, new_figure,
                                 place_axes, row_names_at, shorten_middle, text_height, text_width, wrap)
from merclip.head import Prediction


def weighted_cosine(prediction: Prediction) -> list[float]:
    """Each label's raw CLIP cosine, mixed over the modalities by the prior weights used for scoring."""
    total = np.zeros(len(prediction.labels))
    for modality, weight in prediction.prior_weights.items():
        total += weight * np.asarray(prediction.cosines[modality])
    return total.tolist()


def _percent_decimals(values: Sequence[float], most: int = 2) -> int:
    """The fewest decimals (up to `most`) with which different percentages read differently: 64 labels
    near 1.6% each all read "2%" with none, and their order is what a visitor wants to see."""
    distinct = len({round(float(v), most + 2) for v in values})
    return next((d for d in range(most) if len({f"{v:.{d}%}" for v in values}) == distinct), most)


def similarity_bars(prediction: Prediction, colours: Mapping[str, str] | None = None) -> Figure:
    """Labels sorted by probability, each bar in its label's colour, the winner outlined and its
    name bold; each bar says probability and raw cosine."""
    colours = colours_of(prediction.labels, colours)
    order = np.argsort(prediction.probs)  # ascending: barh draws the first at the bottom
    labels = [prediction.labels[i] for i in order]
    probs = [float(prediction.probs[i]) for i in order]
    cosines = weighted_cosine(prediction) if prediction.prior_weights else None
    decimals = _percent_decimals(probs)
    values = [f"{prediction.probs[i]:.{decimals}%}" + (f" · cos {cosines[i]:+.3f}" if cosines else "") for i in order]
    names = [shorten_middle(label, MAX_LABEL_WIDTH, SMALL, bold=True) for label in labels]
    xlabel = "probability" + ("\ncos: raw CLIP cosine, weighted over the modalities" if cosines else "")
    left = PAD + max(text_width(n, SMALL, bold=True) for n in names) + 0.08
    right = 0.2
    bottom = PAD + text_height(xlabel.count("\n") + 1, SMALL) + text_height(1, SMALL) + 0.12
    figure, top = new_figure(bottom + ROW * len(labels) + 0.05, f"Which label fits best: {prediction.top_label}")
    axes = place_axes(figure, left, right, top, bottom)
    winner = len(labels) - 1
    bars = axes.barh(range(len(labels)), probs, height=0.7, color=[colours[label] for label in labels],
                     edgecolor=["none"] * winner + [OUTLINE], linewidth=[0] * winner + [2.0])
    # the x range leaves room for each bar's value text after its end
    span = WIDTH - left - right
    gap = 0.05
    need = max(p / max(1e-6, 1 - (text_width(v, SMALL) + gap) / span) for p, v in zip(probs, values))
    xmax = max(need, 0.05)
    axes.set_xlim(0, xmax)
    axes.set_ylim(-0.5, len(labels) - 0.5)
    offset = ScaledTranslation(gap, 0, figure.dpi_scale_trans)
    for row, (bar, text) in enumerate(zip(bars, values)):
        axes.text(bar.get_width(), row, text, va="center", ha="left", fontsize=SMALL,
                  transform=axes.transData + offset, fontweight="bold" if row == winner else "normal", gid="value")
    row_names_at(axes, names, 0.06, winner, "row-name")
    ticks = [t for t in (0, 0.25, 0.5, 0.75, 1.0) if t <= xmax]
    if len(ticks) < 3:
        ticks = [round(x, 2) for x in np.linspace(0, xmax, 4)[:-1]]
    axes.set_xticks(ticks, [f"{t:.0%}" for t in ticks], fontsize=SMALL)
    axes.set_xlabel(wrap(xlabel, WIDTH - 2 * PAD, SMALL), fontsize=SMALL, ha="left")
    axes_height = figure.get_size_inches()[1] - top - bottom
    axes.xaxis.set_label_coords(-(left - PAD) / span, -(text_height(1, SMALL) + 0.1) / axes_height)
    axes.spines[["top", "right"]].set_visible(False)
    ranked = np.argsort(prediction.probs)[::-1]
    figure.set_label("Label probabilities: " + ", ".join(f"{prediction.labels[i]} {prediction.probs[i]:.{decimals}%}"
                                                         for i in ranked)
                     + f". {colour_key(colours, [prediction.labels[i] for i in ranked])}. Bar")
    return figure
