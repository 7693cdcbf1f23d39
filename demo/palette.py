"""One colour per label for a visitor's whole session, the same on every chart of the page.

A visitor reads a chart by its colours: if "neutral" is orange in one figure and red in the
next, every figure must be decoded anew. `LabelColours` hands each label a colour the first
time it is seen and keeps it while the visitor edits the label set; the page keeps one per
browser session (in `gr.State`, which deep-copies it per session).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

# Okabe-Ito's six chromatic colours, then Paul Tol's sand, wine, dark olive, indigo, rose and olive:
# twelve colours whose CIELAB distances stay >= 13 under simulated deuteranopia and protanopia too
# (checked in tests/test_plots.py), none of them grey (grey means "a label without a colour of its own").
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
           "#DDCC77", "#882255", "#666633", "#332288", "#EE6677", "#999933")
NEUTRAL = "#c4c4c4"  # the labels of a set of more than 12 beyond its 12 prominent ones: more hues would not read apart
# what the figures' alt texts call each colour, so that a reader who does not see them can match
# the charts' colour keys (WCAG: what colour conveys is also said in text)
COLOUR_NAMES = dict(zip((*PALETTE, NEUTRAL), (
    "blue", "orange", "green", "pink", "sky blue", "vermilion", "sand", "wine", "dark olive", "indigo", "rose",
    "olive", "grey")))


class LabelColours:
    """Hands out `PALETTE` colours to labels and remembers them.

    A label keeps the colour it got first as long as no other label of the current set holds it;
    a new label takes a colour that no label of the current set uses, the one used least recently,
    so a visitor who swaps one label for another changes one colour only.
    """

    def __init__(self, palette: Sequence[str] = PALETTE, neutral: str = NEUTRAL):
        self.palette = tuple(palette)
        self.neutral = neutral
        self._colour: dict[str, str] = {}  # label -> the colour it had last
        self._last_used: dict[str, int] = {}  # colour -> the call that used it last
        self._calls = 0
        self._lock = threading.Lock()  # one visitor's clicks may be handled by two threads

    def of(self, labels: Sequence[str], prominent: Iterable[str] = ()) -> dict[str, str]:
        """Each label's hex colour. Up to 12 labels: each its own. A larger set gives its colours to the
        labels of `prominent` that are in it (at most 12; the first 12 labels without `prominent`)
        and `neutral` to the rest: 64 hues cannot be told apart, 12 and a grey can."""
        labels = list(dict.fromkeys(labels))
        if len(labels) <= len(self.palette):
            coloured = labels
        else:
            present = set(labels)
            coloured = [label for label in dict.fromkeys(prominent) if label in present][:len(self.palette)]
            coloured = coloured or labels[:len(self.palette)]
        with self._lock:
            self._calls += 1
            given: dict[str, str] = {}
            for label in coloured:  # remembered colours first, so a new label cannot take one of them
                colour = self._colour.get(label)
                if colour is not None and colour in self.palette and colour not in given.values():
                    given[label] = colour
            for label in coloured:
                if label not in given:
                    taken = set(given.values())
                    free = [c for c in self.palette if c not in taken]
                    given[label] = min(free, key=lambda c: self._last_used.get(c, -1))  # never used: -1, first
            for label, colour in given.items():
                self._colour[label] = colour
                self._last_used[colour] = self._calls
        return {label: given.get(label, self.neutral) for label in labels}

    def __getstate__(self) -> dict:  # a lock cannot be copied: gr.State deep-copies this object per session
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
