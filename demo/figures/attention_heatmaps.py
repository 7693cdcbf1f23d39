"""The decoder stages' figures: whom each label attended to, as heatmaps of its attention over
the transcript's words, the voice's moments or the video's frames."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from demo.figures.layout import (DPI, FONT, MAX_LABEL_WIDTH, PAD, ROW, SMALL, WIDTH, colours_of, new_figure, place_axes,
                                 row_names_at, shorten_end, shorten_middle, text_height, text_width, title_block, wrap)
from merclip.head import Prediction, StageAttention

STAGE_NAMES = {"text": "Words", "audio": "Voice", "vision": "Face"}
STAGE_CAPTIONS = {"text": "which words each label looked at", "audio": "which moments of the voice each label listened to",
                  "vision": "which video frames each label looked at"}
AXIS_NAMES = {"text": "words of the transcript", "audio": "time in the audio (s)", "vision": "time of the video frame (s)"}
COLOUR_BAR_CAPTION = "x even share (brighter = more)"
MAX_WORD_COLUMNS = 24  # more words than this (or than fit side by side): the top label's row only, wrapped
WORD_FONT = FONT - 2
WORDS_PER_ROW = 6  # a cell of ~75 px holds a 10-letter word at 9 pt
MAX_WORD_LINES = 50  # 300 words; the JSON result has every word's attention
MAX_TICK_WORD = 12  # characters of a word under a heatmap column (the rest as "…")
MAX_TIME_COLUMNS = 48  # more audio or video elements are pooled into this many time bins
MAX_TIME_TICKS = 6
EVEN_SHADE = 3.0  # the colour scale tops out at 3x the even share at least, so even attention stays dark
WORD_ROW = 0.26  # inches per line of a wrapped transcript
HEATMAP_CMAP = "magma"


def stage_heatmaps(prediction: Prediction, colours: Mapping[str, str] | None = None) -> list[Figure]:
    """The heatmaps of the prediction's trained stages, all the same height so that a row of them lines up."""
    top = prediction.labels.index(prediction.top_label)
    stages = [stage for stage in prediction.stages if stage.trained]
    titles = [title_block(_heatmap_title(stage, prediction.labels, top))[1] for stage in stages]
    total = max((_heatmap_height(s, prediction.labels) + t for s, t in zip(stages, titles)), default=0.0)
    return [stage_heatmap(stage, prediction.labels, top, colours, height=total - title)
            for stage, title in zip(stages, titles)]


def _heatmap_title(stage: StageAttention, labels: Sequence[str], top: int) -> str:
    if _wrapped(stage, labels):
        return _stage_title(stage, f"the top label '{labels[top]}' only")
    return _stage_title(stage, _pooling_note(len(stage.elements)) if stage.modality != "text" else "")


def stage_heatmap(stage: StageAttention, labels: Sequence[str], top: int, colours: Mapping[str, str] | None = None,
                  height: float | None = None) -> Figure:
    """Attention of one trained decoder stage as a multiple of the even share (1 = every element alike):
    labels as rows (the winning label `top` marked, each row with its label's colour), words or seconds
    as columns. A long transcript shows the winning label's row only, its words wrapped so that every
    one stays readable. `height`: the figure's height in inches (at least what it needs), so that the
    stages of one prediction line up (`stage_heatmaps`)."""
    colours = colours_of(labels, colours)
    attention = np.asarray(stage.attention, dtype=float)
    name = STAGE_NAMES.get(stage.modality, stage.modality)
    height = max(height or 0.0, _heatmap_height(stage, labels))
    if _wrapped(stage, labels):
        figure = _wrapped_words(stage, labels[top], colours[labels[top]], attention[top], height)
    else:
        figure = _label_rows(stage, labels, top, attention, colours, height)
    peak = int(np.argmax(attention[top]))
    element = stage.elements[peak]
    figure.set_label(f"{name} stage attention: the label {labels[top]} looked most at "
                     + (f"the word '{element}'" if isinstance(element, str) else f"{element:.1f} s")
                     + f", {attention[top, peak] * attention.shape[1]:.1f} times the even share. Heatmap")
    return figure


@functools.lru_cache(maxsize=64)
def _row_names(labels: tuple[str, ...], top: int) -> tuple[list[str], float]:
    """Each heatmap row's name ("▶ " marks the winner) and the widest's width in inches."""
    names = [shorten_middle(("▶ " if row == top else "") + label, MAX_LABEL_WIDTH, SMALL, bold=row == top)
             for row, label in enumerate(labels)]
    return names, max(text_width(n, SMALL, bold=True) for n in names)


def _label_column(labels: Sequence[str]) -> float:
    """Inches left of a heatmap's axes: the row names and a colour swatch."""
    widest = max(text_width("▶ " + label, SMALL, bold=True) for label in labels)
    return PAD + min(widest, MAX_LABEL_WIDTH) + 0.25


def _wrapped(stage: StageAttention, labels: Sequence[str]) -> bool:
    """Whether a Words stage shows the top label's row only, its words wrapped: more words than
    fit side by side as columns under the label rows."""
    if stage.modality != "text":
        return False
    columns = len(stage.elements)
    room = WIDTH - _label_column(labels) - 0.2
    return columns > MAX_WORD_COLUMNS or room / max(columns, 1) < text_height(1, WORD_FONT) + 0.01


def _tick_words(elements: Sequence) -> list[str]:
    return [shorten_end(str(e), text_width("m" * (MAX_TICK_WORD - 2), WORD_FONT), WORD_FONT) for e in elements]


def _colour_bar_height() -> float:
    """Inches under a heatmap's axes for the colour bar, its ticks and caption."""
    return 0.14 + text_height(1, SMALL) + 0.1


def _heatmap_height(stage: StageAttention, labels: Sequence[str]) -> float:
    """The height in inches (without the title) a stage's heatmap needs."""
    bar = _colour_bar_height()
    if _wrapped(stage, labels):
        lines = -(-min(len(stage.elements), MAX_WORD_LINES * WORDS_PER_ROW) // WORDS_PER_ROW)
        return PAD + bar + text_height(2, SMALL) + 0.15 + WORD_ROW * lines
    if stage.modality == "text":
        ticks = max(text_width(w, WORD_FONT) for w in _tick_words(stage.elements))
    else:
        ticks = text_height(1, SMALL)
    return PAD + bar + text_height(1, SMALL) + ticks + 0.2 + ROW * len(labels)


def _colour_bar(figure: Figure, norm: Normalize, left: float) -> None:
    """A horizontal colour bar at the figure's bottom right, its caption to its left: an image at
    fixed pixels and a few texts (a colour bar's own axes cost as much as the heatmap's)."""
    width, height = figure.get_size_inches()
    caption = text_width(COLOUR_BAR_CAPTION, SMALL)
    bar_left = max(left, PAD + caption + 0.1)
    bar_width = width - bar_left - 0.25
    labels_height = text_height(1, SMALL)
    bar_bottom = PAD + labels_height + 0.04
    pixels = int(bar_width * DPI)
    ramp = np.tile(np.linspace(norm.vmin, norm.vmax, pixels), (int(0.14 * DPI), 1))
    figure.figimage(ramp, xo=int(bar_left * DPI), yo=int(bar_bottom * DPI), cmap=HEATMAP_CMAP, norm=norm,
                    origin="upper", gid="colour-bar")
    step = max(1, int(norm.vmax) // 5)
    for tick in range(int(norm.vmin), int(norm.vmax) + 1, step):
        x = bar_left + bar_width * (tick - norm.vmin) / (norm.vmax - norm.vmin)
        figure.text(x / width, PAD / height, str(tick), ha="center", va="bottom", fontsize=SMALL, gid="colour-tick")
    figure.text((bar_left - 0.1) / width, (bar_bottom + 0.07) / height, COLOUR_BAR_CAPTION, ha="right", va="center",
                fontsize=SMALL, gid="colour-caption")


def _label_rows(stage: StageAttention, labels: Sequence[str], top: int, attention: np.ndarray,
                colours: Mapping[str, str], height: float) -> Figure:
    elements = list(stage.elements)
    relative = attention * attention.shape[1]
    if stage.modality != "text" and relative.shape[1] > MAX_TIME_COLUMNS:
        relative, elements = _pooled(relative, elements, MAX_TIME_COLUMNS)
    columns = relative.shape[1]
    figure, title_height = new_figure(height, _heatmap_title(stage, labels, top))
    left = _label_column(labels)
    if stage.modality == "text":
        words = _tick_words(elements)
        ticks_height = max(text_width(w, WORD_FONT) for w in words)
    else:
        ticks_height = text_height(1, SMALL)
    bottom = PAD + _colour_bar_height() + text_height(1, SMALL) + ticks_height + 0.15
    axes = place_axes(figure, left, 0.2, title_height, bottom)
    norm = Normalize(0.0, max(EVEN_SHADE, float(relative.max())))
    axes.imshow(relative, aspect="auto", cmap=HEATMAP_CMAP, interpolation="nearest", norm=norm)
    _colour_bar(figure, norm, left)
    names, _ = _row_names(tuple(labels), top)
    row_names_at(axes, names, 0.2, top, "row-name")
    _swatches(axes, range(len(labels)), [colours[label] for label in labels], 0.1)
    axes.add_patch(Rectangle((-0.5, top - 0.5), columns, 1, fill=False, edgecolor="white", linewidth=1.5))
    if stage.modality == "text":
        shift = ScaledTranslation(0, -0.05, figure.dpi_scale_trans)
        transform = blended_transform_factory(axes.transData, axes.transAxes) + shift
        for column, word in enumerate(words):
            axes.text(column, 0, word, transform=transform, rotation=90, ha="center", va="top", fontsize=WORD_FONT,
                      gid="column-name")
        axes.set_xticks([])
        axes.xaxis.set_label_coords(0.5, -(ticks_height + 0.1) / (figure.get_size_inches()[1] - title_height - bottom))
    else:
        ticks = sorted({round(i) for i in np.linspace(0, columns - 1, min(columns, MAX_TIME_TICKS))})
        axes.set_xticks(ticks, [_element_label(elements[i]) for i in ticks], fontsize=SMALL)
    axes.tick_params(axis="x", pad=2, length=2)
    axes.set_xlabel(AXIS_NAMES.get(stage.modality, stage.modality), fontsize=SMALL, labelpad=2)
    return figure


def _wrapped_words(stage: StageAttention, label: str, colour: str, row: np.ndarray, height: float) -> Figure:
    total = len(stage.elements)
    words = [str(e) for e in stage.elements[:MAX_WORD_LINES * WORDS_PER_ROW]]
    relative = row[:len(words)] * total
    lines = -(-len(words) // WORDS_PER_ROW)
    grid = np.full((lines, WORDS_PER_ROW), np.nan)
    grid.flat[:len(words)] = relative
    figure, title_height = new_figure(height, _stage_title(stage, f"the top label '{label}' only"))
    bottom = PAD + _colour_bar_height() + text_height(2, SMALL) + 0.12
    left = right = 0.12
    axes = place_axes(figure, left, right, title_height, bottom)
    norm = Normalize(0.0, max(EVEN_SHADE, float(relative.max())))
    axes.imshow(grid, aspect="auto", cmap=HEATMAP_CMAP, norm=norm, interpolation="nearest")
    _colour_bar(figure, norm, PAD)
    cell = (WIDTH - left - right) / WORDS_PER_ROW - 0.08
    for index, (word, value) in enumerate(zip(words, relative)):
        axes.text(index % WORDS_PER_ROW, index // WORDS_PER_ROW, shorten_end(word, cell, WORD_FONT), ha="center",
                  va="center", fontsize=WORD_FONT, color="black" if norm(value) > 0.6 else "white")
    for side in ("left", "right", "top", "bottom"):
        axes.spines[side].set_color(colour)  # the frame in the label's colour says whose row this is
        axes.spines[side].set_linewidth(2)
    axes.set_xticks([])
    axes.set_yticks([])
    shown = f"the transcript's {total} words" if len(words) == total else f"the first {len(words)} of {total} words"
    axes.set_xlabel(wrap(f"{shown}, read left to right, row by row", WIDTH - 2 * PAD, SMALL), fontsize=SMALL,
                    labelpad=4)
    return figure


def _stage_title(stage: StageAttention, rows: str = "") -> str:
    name = STAGE_NAMES.get(stage.modality, stage.modality)
    caption = STAGE_CAPTIONS.get(stage.modality, "what each label attended to")
    return f"{name} stage\n{caption}" + (f",\n{rows}" if rows else "")


def _bin_edges(count: int, bins: int) -> np.ndarray:
    return np.linspace(0, count, bins + 1).round().astype(int)


def _pooled(relative: np.ndarray, elements: list, bins: int) -> tuple[np.ndarray, list]:
    """Attention (as multiples of the even share) averaged over `bins` consecutive runs of elements,
    so that even attention still reads 1 in every bin (a sum read 1 or 2 by the bin's size); each
    bin named by its first element."""
    edges = _bin_edges(relative.shape[1], bins)
    pooled = np.add.reduceat(relative, edges[:-1], axis=1) / np.diff(edges)
    return pooled, [elements[start] for start in edges[:-1]]


def _pooling_note(count: int) -> str:
    """What a column of a time heatmap of `count` elements shows, when it pools several."""
    if count <= MAX_TIME_COLUMNS:
        return ""
    sizes = np.diff(_bin_edges(count, MAX_TIME_COLUMNS))
    low, high = int(sizes.min()), int(sizes.max())
    return f"each column the mean of {low if low == high else f'{low}-{high}'} frames"


def _element_label(element: str | float) -> str:
    return element if isinstance(element, str) else f"{element:.1f}"


def _swatches(axes, rows: Sequence[int], colours: Sequence[str], offset: float) -> None:
    """A small square of each row's label colour, `offset` inches left of the axes."""
    shift = ScaledTranslation(-offset, 0, axes.figure.dpi_scale_trans)
    transform = blended_transform_factory(axes.transAxes, axes.transData) + shift
    axes.scatter([0] * len(rows), rows, s=55, marker="s", c=list(colours), transform=transform, clip_on=False,
                 linewidths=0)
