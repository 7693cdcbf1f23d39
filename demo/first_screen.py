"""The page's first screen: a finished analysis of the first example, so that a first visit
shows what the app does instead of empty frames.

It is computed once per server: at start-up, in the background, where a GPU is at hand or
none is needed; on a ZeroGPU Space (no GPU outside a visitor's request) by the first visit.
Its figures are encoded once and every later visit gets the same data. Its files live in a
folder of their own, which the pruning of visitors' results never empties.
"""

from __future__ import annotations

import copy
import logging
import threading
from pathlib import Path
from typing import Any

import gradio as gr
from matplotlib.figure import Figure

from demo.described_plot import DescribedPlot
from demo.palette import LabelColours
from demo.service import OUTPUT_NAMES, AnalysisService
from merclip import MerClipError

log = logging.getLogger(__name__)


class FirstScreen:
    """The example's page outputs, computed once (`prepare`) and handed to every new page (`on_load`)."""

    def __init__(self, service: AnalysisService, clip: Path, preset: str, labels: str, title: str) -> None:
        self.service, self.clip, self.preset, self.labels, self.title = service, clip, preset, labels, title
        self._outputs: tuple | None = None
        self._failed = False
        self._lock = threading.Lock()

    def prepare_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.prepare, name="merclip-first-screen", daemon=True)
        thread.start()
        return thread

    def prepare(self) -> tuple | None:
        """The example's outputs in `OUTPUT_NAMES` order, figures encoded; None if it cannot be analysed."""
        with self._lock:
            if self._outputs is None and not self._failed:
                try:
                    outputs = self.service.predict(str(self.clip), self.labels)
                except (gr.Error, MerClipError) as exc:  # no model (offline, say): the page says why elsewhere
                    log.warning("merclip: the first screen's example was not analysed: %s", exc)
                    self._failed = True
                    return None
                self._outputs = tuple(encoded_for_browser(value) for value in outputs)
            return self._outputs

    def on_load(self, colours: LabelColours) -> tuple:
        """A new page: the example's clip, labels and result, marked as the example; the visitor's
        colours start from the example's labels, so re-scoring it keeps them."""
        outputs = self.prepare()
        if outputs is None:
            return (gr.skip(), gr.skip(), gr.skip(), *(gr.skip() for _ in OUTPUT_NAMES), colours)
        outputs = copy.deepcopy(outputs)  # Gradio rewrites the update dicts it is given in place
        colours.of(outputs[OUTPUT_NAMES.index("result")]["labels"])
        heading = (f"**Example: {self.title}**, analysed when the server started. Type other labels and press "
                   "Enter, or upload or record your own clip and press **Analyse**.")
        shown = dict(zip(OUTPUT_NAMES, outputs)) | {"heading": heading}
        return (str(self.clip), self.preset, self.labels, *(shown[name] for name in OUTPUT_NAMES), colours)


def encoded_for_browser(value: Any) -> Any:
    """A figure (bare or in an update) as the data the page receives, so each visit costs no drawing."""
    if isinstance(value, Figure):
        return DescribedPlot().postprocess(value)
    if isinstance(value, dict) and isinstance(value.get("value"), Figure):
        return value | {"value": DescribedPlot().postprocess(value["value"])}
    return value
