"""The page's first screen: a finished analysis of the first example, so that a first visit
shows what the app does instead of empty frames.

It is computed once per server, at start-up, in the background, by the models that need no
visitor's request: the start-up ones, or on a ZeroGPU Space (no GPU outside a request) the CPU
copy the Live tab scores with, so no visitor spends a GPU slot or waits on one for it. An
analysis that failed is tried again by a later visit, after a back-off. Its figures are encoded
once and every later visit gets the same data. The example keeps an analyzer of its own, which
no visitor's clip evicts, so the clip a page opens with can always be re-scored. Its files live
in a folder of their own, which the pruning of visitors' results never empties.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from time import monotonic
from typing import Any

import gradio as gr
from matplotlib.figure import Figure

from demo.clip_tab import OUTPUT_NAMES, STALE_NOTE, AnalysisService
from demo.described_plot import DescribedPlot
from demo.model_store import ModelChoice
from demo.palette import LabelColours
from demo.presets import DEFAULT_PRESET, PRESETS
from merclip.reading import Analyzer, SegmentReader

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 60.0  # after a failed analysis of the example; doubled after each failure in a row
LAST_RETRY_SECONDS = 3600.0


class ExampleStore:
    """The example's own reader (an analyzer of the start-up models with a cache of its own), as
    `AnalysisService` asks a `ModelStore` for one: the example is analysed with it, and the page
    finds its clip there to re-score it."""

    def __init__(self, analyzer: Callable[[], Analyzer], default: ModelChoice) -> None:
        """`analyzer`: loads the models to analyse the example with (its cache is not used)."""
        self.default = default
        self._analyzer = analyzer
        self._reader: SegmentReader | None = None
        self._lock = threading.Lock()

    def reader(self, choice: ModelChoice) -> SegmentReader:
        with self._lock:
            if self._reader is None:
                self._reader = SegmentReader(self._analyzer().with_empty_cache())
            return self._reader

    def find(self, clip_id: str) -> SegmentReader | None:
        reader = self._reader  # not under the lock, which is held while the models load
        return reader if reader is not None and reader.analyzer.cached(clip_id) is not None else None


class FirstScreen:
    """The example's page outputs, computed once (`analyse_example`) and handed to every new page (`on_load`)."""

    def __init__(self, service: AnalysisService, clip: Path, preset: str, labels: str, title: str,
                 start: tuple[str, str] = (DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])) -> None:
        """`start`: the label set and labels a new page shows before the example arrives (any other
        value then is the visitor's)."""
        self.service, self.clip, self.preset, self.labels, self.title = service, clip, preset, labels, title
        self.start_preset, self.start_labels = start
        self._outputs: tuple | None = None
        self._retry_at = 0.0  # monotonic seconds
        self._retry_after = FIRST_RETRY_SECONDS
        self._lock = threading.Lock()

    def analyse_example_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.analyse_example, name="merclip-first-screen", daemon=True)
        thread.start()
        return thread

    def analyse_example(self) -> tuple | None:
        """The example's outputs in `OUTPUT_NAMES` order, figures encoded; None if it cannot be
        analysed (now, or since its last failure, until the back-off has passed)."""
        with self._lock:
            if self._outputs is None and monotonic() >= self._retry_at:
                try:
                    outputs = self.service.on_api_predict(str(self.clip), self.labels)
                except gr.Error as exc:  # no model (offline, say): the page says why elsewhere
                    log.warning("merclip: the first screen's example was not analysed (next try in %.0f s): %s",
                                self._retry_after, exc.message)
                    self._retry_at = monotonic() + self._retry_after
                    self._retry_after = min(2 * self._retry_after, LAST_RETRY_SECONDS)
                    return None
                self._outputs = tuple(encoded_for_browser(value) for value in outputs)
            return self._outputs

    def on_load_wait_for_example(self) -> None:
        """The page's first step: returns once the example is analysed (at once, but right after the
        server starts), so that the second (`on_load`) reads what the visitor has set meanwhile."""
        self.analyse_example()

    def on_load(self, colours: LabelColours, video: str | None, other_media: str | None, preset: str,
                labels: str) -> tuple:
        """A new page: the example's clip, labels and result, marked as the example; the visitor's
        colours start from the example's labels, so re-scoring it keeps them. The visitor's own input
        wins over an example that arrives late: a video or file of theirs keeps the page as it is (and
        the result of any analysis they started); their labels or label set are kept, and the example's
        figures marked as being for other labels. Outputs: video, preset, labels, `OUTPUT_NAMES`, the
        stale-figures note, colours."""
        outputs = self.analyse_example()
        if outputs is None or video or other_media:
            return (gr.skip(), gr.skip(), gr.skip(), *(gr.skip() for _ in OUTPUT_NAMES), gr.skip(), colours)
        outputs = copy.deepcopy(outputs)  # Gradio rewrites the update dicts it is given in place
        colours.of(outputs[OUTPUT_NAMES.index("result")]["labels"])
        heading = (f"**Example: {self.title}**, analysed in advance. Type other labels and press "
                   "Enter, or upload or record your own clip and press **Analyse**.")
        shown = dict(zip(OUTPUT_NAMES, outputs)) | {"heading": heading}
        typed = (preset, labels) != (self.start_preset, self.start_labels)
        return (str(self.clip), gr.skip() if typed else self.preset, gr.skip() if typed else self.labels,
                *(shown[name] for name in OUTPUT_NAMES), STALE_NOTE if typed else gr.skip(), colours)


def encoded_for_browser(value: Any) -> Any:
    """A figure (bare or in an update) as the data the page receives, so each visit costs no drawing."""
    if isinstance(value, Figure):
        return DescribedPlot().postprocess(value)
    if isinstance(value, dict) and isinstance(value.get("value"), Figure):
        return value | {"value": DescribedPlot().postprocess(value["value"])}
    return value
