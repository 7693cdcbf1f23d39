"""What every figure shares: its size and fonts, text measured without drawing, the labels'
colours, and a title and axes placed in inches.

Figures are 500 px wide and a phone shrinks them, it does not re-layout them: margins are
computed from the font's advance widths (no layout engine: constrained layout was half of every
draw), and text that could collide is spread, wrapped or shortened with an ellipsis.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.ft2font import LoadFlags
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from demo.palette import COLOUR_NAMES, LabelColours
from merclip.head import Prediction

OUTLINE = "#1a1a1a"  # the winner's bar and the chosen utterance: an outline, no colour of their own
WIDTH = 5.0  # inches at 100 dpi: 500 px, about 1.5x a phone's figure width
DPI = 100
FONT = 11
SMALL = FONT - 1  # tick labels, values, captions
PAD = 0.08  # inches between the figure's edge and any text
MAX_LABEL_WIDTH = 0.4 * WIDTH  # a label's name beside a bar or heatmap row; longer ones shortened in the middle
ROW = 0.3  # inches per bar or heatmap row

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


def shorten_middle(text: str, width: float, size: float, bold: bool = False) -> str:
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


def shorten_end(text: str, width: float, size: float) -> str:
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


def colours_of(labels: Sequence[str], colours: Mapping[str, str] | None) -> Mapping[str, str]:
    """The figure's colours: the ones given (every label must have one: no grey stand-in), or a fresh palette's."""
    if colours is None:
        return LabelColours().of(labels)
    return {label: colours[label] for label in labels}


def colour_key(colours: Mapping[str, str], labels: Sequence[str]) -> str:
    """The alt texts' words for a figure's colours: "Colours: happy = blue, sad = orange"."""
    return "Colours: " + ", ".join(f"{label} = {COLOUR_NAMES.get(colours[label], colours[label])}"
                                   for label in dict.fromkeys(labels))


# --- figure scaffolding --------------------------------------------------------------------------

def title_block(title: str) -> tuple[str, float]:
    """The title wrapped to the figure's width and the inches it takes from the figure's top."""
    title = wrap(title, WIDTH - 2 * PAD, FONT + 1)
    return title, PAD + text_height(title.count("\n") + 1, FONT + 1) + 0.1


def new_figure(height: float, title: str) -> tuple[Figure, float]:
    """A figure `height` inches tall (plus its title's lines), the title at its top left; returns
    the figure and the inches the title takes from the top."""
    title, top = title_block(title)
    figure = Figure(figsize=(WIDTH, height + top), dpi=DPI)
    figure.text(PAD / WIDTH, 1 - PAD / (height + top), title, ha="left", va="top", fontsize=FONT + 1)
    return figure, top


def title_of(figure: Figure) -> str:
    """The title a figure of this package carries (its first figure text)."""
    return figure.texts[0].get_text() if figure.texts else ""


def place_axes(figure: Figure, left: float, right: float, top: float, bottom: float):
    """Axes placed by margins in inches (no layout engine: cheap, and the same every draw)."""
    width, height = figure.get_size_inches()
    return figure.add_axes((left / width, bottom / height, 1 - (left + right) / width, 1 - (top + bottom) / height))


def row_names_at(axes, names: Sequence[str], offset: float, bold: int, gid: str) -> None:
    """Each row's name right-aligned `offset` inches left of the axes, at the row's height; plain
    texts, not ticks (matplotlib's Tick objects were a third of each figure's drawing time)."""
    shift = ScaledTranslation(-offset, 0, axes.figure.dpi_scale_trans)
    transform = blended_transform_factory(axes.transAxes, axes.transData) + shift
    for row, name in enumerate(names):
        axes.text(0, row, name, transform=transform, ha="right", va="center", fontsize=SMALL,
                  fontweight="bold" if row == bold else "normal", gid=gid)
    axes.set_yticks([])


# --- where names and ticks go -----------------------------------------------------------------

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


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round ticks (steps of 1, 2, 2.5 or 5 times a power of ten) within [low, high], about `count` of them."""
    step = (high - low) / count
    magnitude = 10 ** np.floor(np.log10(step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=step)
    first = np.ceil(low / step - 1e-9) * step  # a bound a rounding error above a round value keeps its tick
    return [round(float(t), 6) + 0.0 for t in np.arange(first, high + 1e-12, step)]  # + 0.0: -0.0 becomes 0.0
