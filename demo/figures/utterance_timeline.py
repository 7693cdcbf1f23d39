"""The utterance timeline: the clip's utterances (or windows) on its time axis, each in its top
label's colour, and with anchored labels the expected sentiment over them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from demo.figures.layout import (OUTLINE, PAD, SMALL, WIDTH, colour_key, colours_of, new_figure, nice_ticks, place_axes,
                                 shorten_end, shorten_middle, text_height, text_width)
from demo.palette import contrast
from merclip.reading import SegmentPrediction


def segment_timeline(parts: Sequence[SegmentPrediction], labels: Sequence[str],
                     colours: Mapping[str, str] | None = None, selected: int = 0) -> Figure | None:
    """Each utterance (or window) as a span on the clip's time axis, in its top label's colour and
    numbered as in the list under the figure; `selected` (1-based; 0: none) outlined, the others
    faded; with anchored labels, the expected sentiment too."""
    if not parts:
        return None
    colours = colours_of(labels, colours)
    anchored = all(p.prediction.sentiment is not None for p in parts)
    shown = list(dict.fromkeys(p.prediction.top_label for p in parts))
    end = max(p.end for p in parts)
    left = PAD + 0.05
    right = PAD + (text_width("expected", SMALL - 1) + text_height(1, SMALL - 1) + 0.15 if anchored else 0.15)
    span_width = WIDTH - left - right
    entries, legend_lines = _legend_rows(shown, WIDTH - 2 * PAD)
    legend_height = legend_lines * (text_height(1, SMALL) + 0.06)
    bottom = PAD + legend_height + 0.08 + text_height(2, SMALL) + 0.1
    plot_height = 1.0 + (0.7 if anchored else 0)
    kind = "utterance" if any(p.text for p in parts) else "window"
    title = f"{len(parts)} {kind}{'s' if len(parts) > 1 else ''}, coloured by the top label"
    if 0 < selected <= len(parts):
        title += f"; {kind} {selected} outlined"
    figure, top = new_figure(plot_height + bottom, title)
    axes = place_axes(figure, left, right, top, bottom)
    inches_per_second = span_width / max(end, 1e-6)
    for number, part in enumerate(parts, start=1):
        colour = colours[part.prediction.top_label]
        chosen = number == selected
        faded = selected and not chosen
        width = max(part.end - part.start, 0.05)
        axes.broken_barh([(part.start, width)], (0.04, 0.92), facecolor=colour, gid=part.prediction.top_label, alpha=0.45 if faded else 1.0,
                         edgecolor=OUTLINE if chosen else "white", linewidth=3.0 if chosen else 0.8,
                         zorder=3 if chosen else 2)
        ink = _ink_on(colour) if not faded else "black"
        room = width * inches_per_second - 0.06
        middle = (part.start + part.end) / 2
        mark = str(number)
        if text_width(mark, SMALL, bold=True) <= room:
            axes.text(middle, 0.68, mark, ha="center", va="center", fontsize=SMALL, color=ink, fontweight="bold",
                      zorder=4)
        if part.text and room >= text_width("abc…", SMALL - 2):
            axes.text(middle, 0.3, shorten_end(part.text, room, SMALL - 2), ha="center", va="center",
                      fontsize=SMALL - 2, color=ink, zorder=4)
    _legend(figure, entries, colours, PAD + legend_height)
    axes.set_yticks([])
    axes.set_xlim(0, end)
    axes.set_ylim(0, 1)
    axes.tick_params(axis="x", labelsize=SMALL, pad=2)
    axes.set_xlabel("time (s)", fontsize=SMALL, labelpad=3)
    axes.spines[["top", "right", "left"]].set_visible(False)
    if anchored:
        curve = axes.twinx()
        values = [p.prediction.sentiment for p in parts]
        curve.plot([(p.start + p.end) / 2 for p in parts], values, color="black", marker="o", markersize=4,
                   linewidth=1.5, zorder=5)
        low, high = min(values + [0.0]), max(values + [0.0])
        margin = max(high - low, 0.1) * 0.15
        curve.set_ylim(low - margin, high + margin)
        ticks = nice_ticks(low - margin, high + margin, 3)
        curve.set_yticks(ticks, [f"{t:g}" for t in ticks], fontsize=SMALL - 1)
        curve.set_ylabel("expected\nsentiment", fontsize=SMALL - 1, labelpad=2)
        curve.spines[["top", "left"]].set_visible(False)
    figure.set_label("Utterances over time: " + "; ".join(
        f"{p.start:.1f}-{p.end:.1f} s {p.prediction.top_label}" for p in parts)
        + (f"; utterance {selected} shown" if selected else "") + f". {colour_key(colours, shown)}. Timeline")
    return figure


def _legend_rows(labels: Sequence[str], width: float) -> tuple[list[tuple[str, str, float, int]], int]:
    """Each legend entry (label, shown name, x in inches, line) laid out in lines `width` wide."""
    entries, x, line = [], 0.0, 0
    for label in labels:
        name = shorten_middle(label, width - 0.3, SMALL)
        entry = 0.22 + text_width(name, SMALL) + 0.2
        if x and x + entry > width:
            x, line = 0.0, line + 1
        entries.append((label, name, x, line))
        x += entry
    return entries, line + 1 if entries else 0


def _legend(figure: Figure, entries, colours: Mapping[str, str], top: float) -> None:
    """A legend of colour squares and names, drawn at `top` inches from the figure's bottom (no
    matplotlib legend: its layout costs a draw, and this one cannot overflow the figure)."""
    width, height = figure.get_size_inches()
    line_height = text_height(1, SMALL) + 0.06
    boxes = []
    for label, name, x, line in entries:
        y = top - (line + 0.5) * line_height
        boxes.append(Rectangle(((PAD + x) / width, (y - 0.07) / height), 0.14 / width, 0.14 / height,
                               facecolor=colours[label], edgecolor="none"))
        figure.text((PAD + x + 0.22) / width, y / height, name, va="center", ha="left", fontsize=SMALL)
    figure.add_artist(PatchCollection(boxes, match_original=True, transform=figure.transFigure))


def _ink_on(colour: str) -> str:
    """Black or white, whichever contrasts more with `colour` (one of them always reaches 4.5:1)."""
    colour = matplotlib.colors.to_hex(colour)
    return "black" if contrast(colour, "#000000") >= contrast(colour, "#ffffff") else "white"
