"""The face timeline: each label's similarity to each sampled frame's face over the clip."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from demo.figures.layout import (PAD, SMALL, WIDTH, colour_key, colours_of, new_figure, nice_ticks, place_axes,
                                 shorten_middle, spread, text_height, text_width)
from demo.palette import contrast
from merclip.head import Prediction

TIMELINE_NAMED = 3  # the top labels drawn thick and named at their line's end; the rest thin


def frame_timeline(prediction: Prediction, colours: Mapping[str, str] | None = None, part: str = "") -> Figure | None:
    """Each label's cosine with each sampled frame's face over the clip (None without video frames),
    each line in its label's colour; the top labels thick and named at their line's end (the winner
    thickest, its name bold), the others thin. `part`: the part of the clip `prediction` is of
    ("utterance 2 (3.1-5.4 s)"), said in the title."""
    if prediction.frame_similarity is None:
        return None
    colours = colours_of(prediction.labels, colours)
    similarity = np.asarray(prediction.frame_similarity, dtype=float)
    ranked = [int(i) for i in np.argsort(prediction.probs)[::-1]]
    named = ranked[:TIMELINE_NAMED]
    names = [shorten_middle(prediction.labels[r], 1.6, SMALL, bold=k == 0) for k, r in enumerate(named)]
    others = len(prediction.labels) - len(named)
    xlabel = "time (s)" + (f"; thin lines: {_the_other(others)}" if others else "")
    low, high = float(np.nanmin(similarity)), float(np.nanmax(similarity))
    margin = max(high - low, 1e-3) * 0.08
    ylim = (low - margin, high + margin)
    ticks = nice_ticks(*ylim)
    decimals = next((d for d in range(2, 5) if all(abs(round(t, d) - t) < 1e-9 for t in ticks)), 4)
    ytick_labels = [_signed_tick(t, decimals) for t in ticks]
    left = PAD + text_height(1, SMALL) + 0.06 + max(text_width(t, SMALL) for t in ytick_labels) + 0.1
    right = max(text_width(n, SMALL, bold=True) for n in names) + 0.12 + PAD
    bottom = PAD + text_height(1, SMALL) * 2 + 0.12
    plot_height = 2.1
    where = f" in {part}" if part else ""
    title = f"Face only{where}:\neach label's similarity to each sampled frame" if part else \
        "Face only: each label's similarity\nto each sampled frame"
    figure, top = new_figure(plot_height + bottom + 0.05, title)
    axes = place_axes(figure, left, right, top, bottom)
    times = list(prediction.frame_times)
    for row in [r for r in range(len(prediction.labels)) if r not in named]:
        colour = colours[prediction.labels[row]]
        axes.plot(times, similarity[row], color=colour, linewidth=1.0, alpha=0.75, zorder=1, label=prediction.labels[row])
    for k, row in reversed(list(enumerate(named))):
        axes.plot(times, similarity[row], color=colours[prediction.labels[row]], linewidth=3.2 if k == 0 else 1.8,
                  marker="o", markersize=4 if k == 0 else 3, zorder=3 + (k == 0), label=prediction.labels[row])
    span_x = (times[-1] - times[0]) if len(times) > 1 else 1.0
    axes.set_xlim(times[0] - 0.03 * span_x, times[-1] + 0.03 * span_x)
    axes.set_ylim(*ylim)
    gap = text_height(1, SMALL) / plot_height
    ends = [(similarity[row][-1] - ylim[0]) / (ylim[1] - ylim[0]) for row in named]
    places = spread(ends, gap, gap / 2, 1 - gap / 2)
    for k, (row, name, y) in enumerate(zip(named, names, places)):
        axes.text(1 + 0.08 / (WIDTH - left - right), y, name, transform=axes.transAxes, va="center", ha="left",
                  fontsize=SMALL, color=_readable(colours[prediction.labels[row]]),
                  fontweight="bold" if k == 0 else "normal", gid="line-name")
    axes.set_yticks(ticks, ytick_labels, fontsize=SMALL)
    axes.tick_params(axis="x", labelsize=SMALL)
    axes.set_xlabel(shorten_middle(xlabel, WIDTH - left - PAD, SMALL), fontsize=SMALL, labelpad=2)
    axes.set_ylabel("cosine with the label", fontsize=SMALL, labelpad=4)
    axes.grid(alpha=0.3)
    figure.set_label(f"Face similarity over time{where}: " + ", ".join(
        f"{prediction.labels[r]} from {similarity[r][0]:+.2f} to {similarity[r][-1]:+.2f}" for r in named)
        + f". {colour_key(colours, [prediction.labels[r] for r in named])}. Line")
    return figure


def _readable(colour: str) -> str:
    """`colour` darkened until text in it reads on white (4.5:1; sand and sky blue are too light as text)."""
    rgb = np.array(to_rgb(colour))
    darker = matplotlib.colors.to_hex(rgb)
    while contrast(darker, "#ffffff") < 4.5:
        rgb *= 0.95
        darker = matplotlib.colors.to_hex(rgb)
    return darker


def _the_other(count: int) -> str:
    return "the other label" if count == 1 else f"the other {count} labels"


def _signed_tick(value: float, decimals: int) -> str:
    """A tick's number with its sign and `decimals` decimals; zero (also a value that rounds to it)
    without a sign ("0.00", never "-0.00" or "+0.00")."""
    value = round(value, decimals) + 0.0  # + 0.0: -0.0 becomes 0.0
    return f"{value:{'+' if value else ''}.{decimals}f}"
