"""One colour per label for a visitor's whole session, the same on every chart of the page.

A visitor reads a chart by its colours: if "neutral" is orange in one figure and red in the
next, every figure must be decoded anew. `LabelColours` hands each label a colour the first
time it is seen and the label keeps it, and no other label gets it, for the rest of the visit
(the page keeps one per browser session, in `gr.State`, which deep-copies it per session).

The first twelve colours are hand-picked (`PALETTE`); a visit that meets more labels (a set
of 64, or many sets one after another) gets colours generated to stay as far apart as they
can from every colour before them, for normal and colour-blind eyes alike. None is grey: grey
would read as "this label has no colour", and a shown label always has one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

# Okabe-Ito's six chromatic colours, then Paul Tol's sand, wine, dark olive, indigo, rose and olive:
# twelve colours whose CIELAB distances stay >= 13 under simulated deuteranopia and protanopia too
# (checked in tests/test_figures.py).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
           "#DDCC77", "#882255", "#666633", "#332288", "#EE6677", "#999933")
PALETTE_NAMES = ("blue", "orange", "green", "pink", "sky blue", "vermilion", "sand", "wine", "dark olive", "indigo",
                 "rose", "olive")
COLOURS_PER_VISIT = 256  # distinct colours a visit can hand out (a label set has at most 64 labels)
# generated colours: not too dark (black is the winner's outline and the text), not so light that a
# bar vanishes on white, and colourful enough never to pass for grey
LIGHTNESS, MIN_CHROMA = (30.0, 82.0), 30.0
# Machado et al. (2009) at full severity: what deuteranopes and protanopes see of linear RGB
SEEN_BY = (np.eye(3),
           np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]),
           np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]))
HUE_NAMES = ((20, "pink"), (50, "red"), (75, "orange"), (105, "yellow"), (160, "green"), (215, "teal"), (315, "blue"),
             (345, "purple"), (360, "pink"))  # CIELAB hue angle up to which each name holds


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def _linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _lab(linear: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of rows of linear RGB."""
    xyz = np.clip(linear, 0, 1) @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                                            [0.0193, 0.1192, 0.9505]]).T
    f = np.cbrt(np.maximum(xyz / np.array([0.95047, 1.0, 1.08883]), 0.008856))
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def seen_lab(colours: Sequence[str]) -> np.ndarray:
    """(views, colours, 3): each colour's CIELAB as normal, deuteranope and protanope eyes see it."""
    linear = _linear(np.array([_rgb(c) for c in colours]))
    return np.stack([_lab(linear @ view.T) for view in SEEN_BY])


def relative_luminance(colour: str) -> float:
    """WCAG 2's relative luminance of a hex colour."""
    return float(_linear(_rgb(colour)) @ np.array([0.2126, 0.7152, 0.0722]))


def contrast(first: str, second: str) -> float:
    """WCAG 2's contrast ratio of two hex colours (4.5 is what text needs)."""
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _generated(count: int) -> list[str]:
    """`count` colours after `PALETTE`, each the one of a 16-level RGB grid farthest (in CIELAB, the
    least of the three eyes' distances) from every colour before it: farthest-point sampling."""
    levels = np.linspace(0, 1, 16)
    grid = np.array(np.meshgrid(levels, levels, levels, indexing="ij")).reshape(3, -1).T
    normal = _lab(_linear(grid))
    keep = (normal[:, 0] >= LIGHTNESS[0]) & (normal[:, 0] <= LIGHTNESS[1]) & (
        np.hypot(normal[:, 1], normal[:, 2]) >= MIN_CHROMA)
    grid = grid[keep]
    candidates = np.stack([_lab(_linear(grid) @ view.T) for view in SEEN_BY])  # (views, n, 3)
    chosen = seen_lab(PALETTE)
    nearest = np.min(np.linalg.norm(candidates[:, :, None] - chosen[:, None], axis=3), axis=(0, 2))
    picked = []
    for _ in range(count):
        best = int(np.argmax(nearest))
        picked.append("#" + "".join(f"{round(v * 255):02X}" for v in grid[best]))
        nearest = np.minimum(nearest, np.linalg.norm(candidates - candidates[:, best:best + 1], axis=2).min(axis=0))
    return picked


def _names(colours: Sequence[str]) -> list[str]:
    """Words for generated colours ("light teal"; "light teal 2" for the next of that name), so that
    an alt text tells every colour of a figure apart."""
    names, seen = [], set(PALETTE_NAMES)
    for colour, (lightness, a, b) in zip(colours, seen_lab(colours)[0]):
        hue = np.degrees(np.arctan2(b, a)) % 360
        name = next(word for limit, word in HUE_NAMES if hue < limit)
        if lightness < 45:
            name = f"dark {name}"
        elif lightness > 65:
            name = f"light {name}"
        numbered, n = name, 1
        while numbered in seen:
            n += 1
            numbered = f"{name} {n}"
        seen.add(numbered)
        names.append(numbered)
    return names


COLOURS = (*PALETTE, *_generated(COLOURS_PER_VISIT - len(PALETTE)))
# what the figures' alt texts call each colour, so that a reader who does not see them can match
# the charts' colour keys (WCAG: what colour conveys is also said in text)
COLOUR_NAMES = dict(zip(COLOURS, (*PALETTE_NAMES, *_names(COLOURS[len(PALETTE):]))))


class LabelColours:
    """Hands out `COLOURS` in order, one to each new label, and remembers them.

    A label keeps its colour for the whole visit and no other label is given it: a visitor who
    swaps, adds or re-orders labels sees every label it has seen before in the same colour. Only
    a visit past `COLOURS_PER_VISIT` labels reuses colours: a new label then takes the colour of
    the label shown longest ago, which is not in the set being shown (that label gets a new one
    if it comes back), so the labels of one set never share a colour.
    """

    def __init__(self, colours: Sequence[str] = COLOURS):
        self.colours = tuple(colours)
        self._colour: dict[str, str] = {}  # label -> its colour
        self._given = 0  # how many of `colours` have been handed out
        self._shown: dict[str, int] = {}  # label -> the call that showed it last
        self._calls = 0
        self._lock = threading.Lock()  # one visitor's clicks may be handled by two threads

    def of(self, labels: Sequence[str]) -> dict[str, str]:
        """Each label's hex colour; new labels take the next colours in the order they are listed."""
        labels = list(dict.fromkeys(labels))
        if len(labels) > len(self.colours):
            raise ValueError(f"{len(labels)} labels, {len(self.colours)} colours")
        with self._lock:
            self._calls += 1
            for label in labels:
                if label not in self._colour:
                    self._colour[label] = self._free_colour(labels)
                self._shown[label] = self._calls
            return {label: self._colour[label] for label in labels}

    def _free_colour(self, shown: Sequence[str]) -> str:
        if self._given < len(self.colours):
            self._given += 1
            return self.colours[self._given - 1]
        showing = set(shown)
        holder = min((label for label in self._colour if label not in showing), key=self._shown.__getitem__)
        self._shown.pop(holder)
        return self._colour.pop(holder)

    def __getstate__(self) -> dict:  # a lock cannot be copied: gr.State deep-copies this object per session
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
