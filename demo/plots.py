"""The page's figures, drawn with matplotlib from a `Prediction`.

Figures are built with `matplotlib.figure.Figure` (not pyplot), so concurrent
requests never share pyplot's global state and nothing piles up in its registry.
Each figure carries its title inside (the page hides Gradio's panel tags, which cover
a figure's top-left corner on a phone) and a one-line text summary as its matplotlib
label, ending with the kind of plot, which `demo.described_plot` makes the image's alt
text ("... Bar plot visualising provided data").

Every label is drawn in its own colour, the same in every figure (`demo.palette`); the
winner is marked by weight (bold name, dark outline, thicker line), never by a colour.
Figures are 500 px wide and a phone shrinks them, it does not re-layout them: margins are
computed here from the font's advance widths (no layout engine: constrained layout was half
of every draw), and text that could collide is spread, wrapped or shortened with an ellipsis.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.ft2font import LoadFlags
from matplotlib.patches import Rectangle
from matplotlib.transforms import ScaledTranslation, blended_transform_factory
from PIL import Image

from demo.palette import COLOUR_NAMES, LabelColours, contrast
from merclip.head import Prediction, StageAttention
from merclip.reading import SegmentPrediction

OUTLINE = "#1a1a1a"  # the winner's bar and the chosen utterance: an outline, no colour of their own
WIDTH = 5.0  # inches at 100 dpi: 500 px, about 1.5x a phone's figure width
DPI = 100
FONT = 11
SMALL = FONT - 1  # tick labels, values, captions
PAD = 0.08  # inches between the figure's edge and any text
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
FIGURE_GAP = 12  # white pixels between the figures of the figures image
EVEN_SHADE = 3.0  # the colour scale tops out at 3x the even share at least, so even attention stays dark
TIMELINE_NAMED = 3  # the top labels drawn thick and named at their line's end; the rest thin
MAX_LABEL_WIDTH = 0.4 * WIDTH  # a label's name beside a bar or heatmap row; longer ones shortened in the middle
ROW = 0.3  # inches per bar or heatmap row
WORD_ROW = 0.26  # inches per line of a wrapped transcript
HEATMAP_CMAP = "magma"

# Labels and transcript words are typed by visitors: "$\\frac{a}$" must be drawn as typed,
# not parsed as TeX (a malformed formula would make drawing the figure fail).
matplotlib.rcParams["text.parse_math"] = False
# FreeType's auto-hinter loads every glyph twice as slowly; at 100 dpi, anti-aliased, unhinted text reads as well.
matplotlib.rcParams["text.hinting"] = "no_hinting"


# --- text measured without drawing -------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _advance(char: str, bold: bool) -> float:
    """A character's advance width in points at 1 pt (DejaVu Sans, matplotlib's font)."""
    font = get_font(findfont(FontProperties(weight="bold" if bold else "normal")))
    font.set_size(100, 72)
    # a character the font lacks (an emoji, say) is drawn as its "missing" glyph, index 0: measured as that
    glyph = font.load_glyph(font.get_char_index(ord(char)), flags=LoadFlags.NO_HINTING)
    return glyph.linearHoriAdvance / 65536 / 100


def text_width(text: str, size: float, bold: bool = False) -> float:
    """The width in inches of `text` at `size` points (its longest line), a little generous:
    hinting makes drawn text up to ~3% wider than the advances say."""
    widest = max((sum(_advance(c, bold) for c in line) for line in text.split("\n")), default=0.0)
    return widest * size / 72 * 1.04 + 2 / DPI


def text_height(lines: int, size: float) -> float:
    """The height in inches of `lines` lines at `size` points (matplotlib's line spacing is 1.2)."""
    return size / 72 * (1.1 + 1.2 * (max(lines, 1) - 1))


def _shorten(text: str, width: float, size: float, bold: bool = False) -> str:
    """`text` if it fits in `width` inches, else its start and end around a "…" (the end of
    "feeling number 43" tells it from "feeling number 44")."""
    if text_width(text, size, bold) <= width:
        return text
    keep = len(text)
    while keep > 2:
        keep -= 1
        head = (keep + 1) // 2
        short = text[:head].rstrip() + "…" + text[len(text) - (keep - head):].lstrip()
        if text_width(short, size, bold) <= width:
            return short
    return text[:1] + "…"


def _cut(text: str, width: float, size: float) -> str:
    """`text` if it fits in `width` inches, else its start and a "…" (a word inside a heatmap cell)."""
    if text_width(text, size) <= width:
        return text
    while len(text) > 1 and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def wrap(text: str, width: float, size: float, bold: bool = False) -> str:
    """`text` broken into lines no wider than `width` inches, at spaces where it can and inside a
    word only when the word alone is wider; no character is dropped."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if text_width(candidate, size, bold) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while text_width(line, size, bold) > width and len(line) > 1:
                cut = len(line) - 1
                while cut > 1 and text_width(line[:cut], size, bold) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return "\n".join(lines)


# --- colours -------------------------------------------------------------------------------------

def label_colours(prediction: Prediction, palette: LabelColours | None = None) -> dict[str, str]:
    """The colours of one prediction's figures, from the visitor's `palette` (a fresh one without):
    every label its own, kept for the visit."""
    return (palette or LabelColours()).of(prediction.labels)


def _colours_of(labels: Sequence[str], colours: Mapping[str, str] | None) -> Mapping[str, str]:
    """The figure's colours: the ones given (every label must have one: no grey stand-in), or a fresh palette's."""
    if colours is None:
        return LabelColours().of(labels)
    return {label: colours[label] for label in labels}


def colour_key(colours: Mapping[str, str], labels: Sequence[str]) -> str:
    """The alt texts' words for a figure's colours: "Colours: happy = blue, sad = orange"."""
    return "Colours: " + ", ".join(f"{label} = {COLOUR_NAMES.get(colours[label], colours[label])}"
                                   for label in dict.fromkeys(labels))


def _ink_on(colour: str) -> str:
    """Black or white, whichever contrasts more with `colour` (one of them always reaches 4.5:1)."""
    colour = matplotlib.colors.to_hex(colour)
    return "black" if contrast(colour, "#000000") >= contrast(colour, "#ffffff") else "white"


# --- figure scaffolding --------------------------------------------------------------------------

def _title_block(title: str) -> tuple[str, float]:
    """The title wrapped to the figure's width and the inches it takes from the figure's top."""
    title = wrap(title, WIDTH - 2 * PAD, FONT + 1)
    return title, PAD + text_height(title.count("\n") + 1, FONT + 1) + 0.1


def _figure(height: float, title: str) -> tuple[Figure, float]:
    """A figure `height` inches tall (plus its title's lines), the title at its top left; returns
    the figure and the inches the title takes from the top."""
    title, top = _title_block(title)
    figure = Figure(figsize=(WIDTH, height + top), dpi=DPI)
    figure.text(PAD / WIDTH, 1 - PAD / (height + top), title, ha="left", va="top", fontsize=FONT + 1)
    return figure, top


def title_of(figure: Figure) -> str:
    """The title a figure of this module carries (its first figure text)."""
    return figure.texts[0].get_text() if figure.texts else ""


def _axes(figure: Figure, left: float, right: float, top: float, bottom: float):
    """Axes placed by margins in inches (no layout engine: cheap, and the same every draw)."""
    width, height = figure.get_size_inches()
    return figure.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (top + bottom) / height))


def _swatches(axes, rows: Sequence[int], colours: Sequence[str], offset: float) -> None:
    """A small square of each row's label colour, `offset` inches left of the axes."""
    shift = ScaledTranslation(-offset, 0, axes.figure.dpi_scale_trans)
    transform = blended_transform_factory(axes.transAxes, axes.transData) + shift
    axes.scatter([0] * len(rows), rows, s=55, marker="s", c=list(colours), transform=transform, clip_on=False,
                 linewidths=0)


def _row_names_at(axes, names: Sequence[str], offset: float, bold: int, gid: str) -> None:
    """Each row's name right-aligned `offset` inches left of the axes, at the row's height; plain
    texts, not ticks (matplotlib's Tick objects were a third of each figure's drawing time)."""
    shift = ScaledTranslation(-offset, 0, axes.figure.dpi_scale_trans)
    transform = blended_transform_factory(axes.transAxes, axes.transData) + shift
    for row, name in enumerate(names):
        axes.text(0, row, name, transform=transform, ha="right", va="center", fontsize=SMALL,
                  fontweight="bold" if row == bold else "normal", gid=gid)
    axes.set_yticks([])


# --- bars ----------------------------------------------------------------------------------------

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
    colours = _colours_of(prediction.labels, colours)
    order = np.argsort(prediction.probs)  # ascending: barh draws the first at the bottom
    labels = [prediction.labels[i] for i in order]
    probs = [float(prediction.probs[i]) for i in order]
    cosines = weighted_cosine(prediction) if prediction.prior_weights else None
    decimals = _percent_decimals(probs)
    values = [f"{prediction.probs[i]:.{decimals}%}" + (f" · cos {cosines[i]:+.3f}" if cosines else "") for i in order]
    names = [_shorten(label, MAX_LABEL_WIDTH, SMALL, bold=True) for label in labels]
    xlabel = "probability" + ("\ncos: raw CLIP cosine, weighted over the modalities" if cosines else "")
    left = PAD + max(text_width(n, SMALL, bold=True) for n in names) + 0.08
    right = 0.2
    bottom = PAD + text_height(xlabel.count("\n") + 1, SMALL) + text_height(1, SMALL) + 0.12
    figure, top = _figure(bottom + ROW * len(labels) + 0.05, f"Which label fits best: {prediction.top_label}")
    axes = _axes(figure, left, right, top, bottom)
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
    _row_names_at(axes, names, 0.06, winner, "row-name")
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


# --- stage heatmaps ------------------------------------------------------------------------------

def stage_heatmaps(prediction: Prediction, colours: Mapping[str, str] | None = None) -> list[Figure]:
    """The heatmaps of the prediction's trained stages, all the same height so that a row of them lines up."""
    top = prediction.labels.index(prediction.top_label)
    stages = [stage for stage in prediction.stages if stage.trained]
    titles = [_title_block(_heatmap_title(stage, prediction.labels, top))[1] for stage in stages]
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
    colours = _colours_of(labels, colours)
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
    names = [_shorten(("▶ " if row == top else "") + label, MAX_LABEL_WIDTH, SMALL, bold=row == top)
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
    return [_cut(str(e), text_width("m" * (MAX_TICK_WORD - 2), WORD_FONT), WORD_FONT) for e in elements]


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
    figure, title_height = _figure(height, _heatmap_title(stage, labels, top))
    left = _label_column(labels)
    if stage.modality == "text":
        words = _tick_words(elements)
        ticks_height = max(text_width(w, WORD_FONT) for w in words)
    else:
        ticks_height = text_height(1, SMALL)
    bottom = PAD + _colour_bar_height() + text_height(1, SMALL) + ticks_height + 0.15
    axes = _axes(figure, left, 0.2, title_height, bottom)
    norm = Normalize(0.0, max(EVEN_SHADE, float(relative.max())))
    axes.imshow(relative, aspect="auto", cmap=HEATMAP_CMAP, interpolation="nearest", norm=norm)
    _colour_bar(figure, norm, left)
    names, _ = _row_names(tuple(labels), top)
    _row_names_at(axes, names, 0.2, top, "row-name")
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
    figure, title_height = _figure(height, _stage_title(stage, f"the top label '{label}' only"))
    bottom = PAD + _colour_bar_height() + text_height(2, SMALL) + 0.12
    left = right = 0.12
    axes = _axes(figure, left, right, title_height, bottom)
    norm = Normalize(0.0, max(EVEN_SHADE, float(relative.max())))
    axes.imshow(grid, aspect="auto", cmap=HEATMAP_CMAP, norm=norm, interpolation="nearest")
    _colour_bar(figure, norm, PAD)
    cell = (WIDTH - left - right) / WORDS_PER_ROW - 0.08
    for index, (word, value) in enumerate(zip(words, relative)):
        axes.text(index % WORDS_PER_ROW, index // WORDS_PER_ROW, _cut(word, cell, WORD_FONT), ha="center",
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


# --- the face timeline ---------------------------------------------------------------------------

def spread(positions: Sequence[float], gap: float, low: float, high: float) -> list[float]:
    """`positions` moved apart as little as possible so that neighbours are `gap` apart, all within
    [low, high] (end-of-line names that would print over each other)."""
    order = np.argsort(positions)
    placed = [float(positions[i]) for i in order]
    for _ in range(2):  # push up, then back down from the top, then up again from the bottom
        for k in range(len(placed)):
            placed[k] = max(placed[k], low + k * gap, placed[k - 1] + gap if k else low)
        for k in reversed(range(len(placed))):
            limit = high - (len(placed) - 1 - k) * gap
            placed[k] = min(placed[k], limit, placed[k + 1] - gap if k + 1 < len(placed) else limit)
    result = [0.0] * len(placed)
    for k, i in enumerate(order):
        result[i] = placed[k]
    return result


def frame_timeline(prediction: Prediction, colours: Mapping[str, str] | None = None, part: str = "") -> Figure | None:
    """Each label's cosine with each sampled frame's face over the clip (None without video frames),
    each line in its label's colour; the top labels thick and named at their line's end (the winner
    thickest, its name bold), the others thin. `part`: the part of the clip `prediction` is of
    ("utterance 2 (3.1-5.4 s)"), said in the title."""
    if prediction.frame_similarity is None:
        return None
    colours = _colours_of(prediction.labels, colours)
    similarity = np.asarray(prediction.frame_similarity, dtype=float)
    ranked = [int(i) for i in np.argsort(prediction.probs)[::-1]]
    named = ranked[:TIMELINE_NAMED]
    names = [_shorten(prediction.labels[r], 1.6, SMALL, bold=k == 0) for k, r in enumerate(named)]
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
    figure, top = _figure(plot_height + bottom + 0.05, title)
    axes = _axes(figure, left, right, top, bottom)
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
    axes.set_xlabel(_shorten(xlabel, WIDTH - left - PAD, SMALL), fontsize=SMALL, labelpad=2)
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


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round ticks (steps of 1, 2, 2.5 or 5 times a power of ten) within [low, high], about `count` of them."""
    step = (high - low) / count
    magnitude = 10 ** np.floor(np.log10(step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=step)
    first = np.ceil(low / step) * step
    return [round(float(t), 6) + 0.0 for t in np.arange(first, high + 1e-12, step)]  # + 0.0: -0.0 becomes 0.0


# --- the utterance timeline ----------------------------------------------------------------------

def segment_timeline(parts: Sequence[SegmentPrediction], labels: Sequence[str],
                     colours: Mapping[str, str] | None = None, selected: int = 0) -> Figure | None:
    """Each utterance (or window) as a span on the clip's time axis, in its top label's colour and
    numbered as in the list under the figure; `selected` (1-based; 0: none) outlined, the others
    faded; with anchored labels, the expected sentiment too."""
    if not parts:
        return None
    colours = _colours_of(labels, colours)
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
    figure, top = _figure(plot_height + bottom, title)
    axes = _axes(figure, left, right, top, bottom)
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
            axes.text(middle, 0.3, _cut(part.text, room, SMALL - 2), ha="center", va="center", fontsize=SMALL - 2,
                      color=ink, zorder=4)
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
        name = _shorten(label, width - 0.3, SMALL)
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


# --- the figures as one image --------------------------------------------------------------------

def drawn(figure: Figure) -> Image.Image:
    """The figure as an RGB image (opaque white: no alpha channel to encode). A figure drawn before and
    unchanged since is not drawn again: the page's figures image and its panels share one draw."""
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg) or figure.stale:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")


def caption_figure(text: str) -> Figure:
    """A figure of one title only: what a figures image shows (the clip, the part of it)."""
    figure, _ = _figure(0.02, text)
    return figure


def figures_png(figures: Sequence[Figure]) -> bytes:
    """The figures one under the other as one PNG: a result to keep or share as it was seen."""
    images = [drawn(figure) for figure in figures]
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)
                              + FIGURE_GAP * (len(images) - 1)), "white")
    top = 0
    for image in images:
        sheet.paste(image, (0, top))
        top += image.height + FIGURE_GAP
    buffer = io.BytesIO()
    sheet.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()
