"""What the page's events call: analyse a clip, re-score it, and turn failures into messages.

Every failure a visitor can cause becomes a `gr.Error` with one readable line; anything
unexpected is logged with its traceback and reported as an internal error, so one bad
request never takes the server down or leaks a stack trace into the page.
"""

from __future__ import annotations

import html
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import gradio as gr

from demo.models import ModelChoice, ModelStore
from demo.views import STAGE_SLOTS, PageView, build_segment_view, build_view, markdown_text, segment_number
from merclip import MerClipError
from merclip.errors import LabelError
from merclip.analysis import AnalysisOptions, Analyzer
from merclip.labels import parse_labels
from merclip.segmented import SegmentReader
from merclip.segments import SegmentMode
from merclip.templates import parse_templates
from merclip.limits import Limits

log = logging.getLogger(__name__)

OUTPUT_NAMES = ("bars", *(f"stage_{i + 1}" for i in range(STAGE_SLOTS)), "timeline", "gallery", "transcript", "summary",
                "warnings", "result", "download", "clip_id", "untrained", "segments", "segment_choice", "segments_csv")
SEGMENT_VIEW_NAMES = ("bars", *(f"stage_{i + 1}" for i in range(STAGE_SLOTS)), "untrained")  # what choosing one redraws
PAGE_OUTPUT_NAMES = (*OUTPUT_NAMES, "label_note", "stale")  # the page also says, by the labels box, what is wrong
UTTERANCES = SegmentMode("utterance")  # the page reads every clip by utterance (in windows without speech)
NO_CLIP_NOTE = "Press **Analyse** first: Enter re-scores a clip that has been analysed."
STALE_NOTE = "The figures below are for the previous labels: press Enter in the labels box (or Re-score) to update them."


class AnalysisService:
    """Analyses for the page and its API, with the models from a `ModelStore`."""

    def __init__(self, store: ModelStore, served: Path, limits: Limits = Limits()) -> None:
        self.store = store
        self.served = served
        self.limits = limits
        self._readers: weakref.WeakKeyDictionary[Analyzer, SegmentReader] = weakref.WeakKeyDictionary()
        self._readers_lock = threading.Lock()

    def reader(self, analyzer: Analyzer) -> SegmentReader:
        """The utterance reader of an analyzer (it keeps the clips it cut, for re-scoring)."""
        with self._readers_lock:
            return self._readers.setdefault(analyzer, SegmentReader(analyzer))

    def predict(self, video: str | None, labels: str, vision_templates: str = "", text_templates: str = "",
                audio_templates: str = "", frames: float = Limits.frames, detect_faces: bool = True,
                transcript: str = "", clip: str | None = None, whisper: str | None = None,
                checkpoint: str | None = None, progress: gr.Progress = gr.Progress()) -> tuple:
        """Analyse a video (encoders run once per clip) and score it against the labels."""
        with _user_errors():
            _check_labels_and_templates(labels, vision_templates, text_templates, audio_templates)
            if not video:
                raise MerClipError("no video: upload a clip or record one with the webcam first")
            choice = ModelChoice(clip or self.store.default.clip, whisper or self.store.default.whisper,
                                 checkpoint or self.store.default.checkpoint)
            progress(0.0, desc="loading models")
            analyzer = self.store.analyzer(choice)
            options = AnalysisOptions(limits=replace(self.limits, frames=int(frames)), detect_faces=bool(detect_faces), transcript=transcript.strip() or None)
            prediction, parts = self.reader(analyzer).predict(
                video, labels, UTTERANCES, _templates(vision_templates, text_templates, audio_templates), options,
                progress=lambda fraction, what: progress(fraction, desc=what), frame_cap=options.limits.frames)
            return self._outputs(prediction, analyzer.cached(prediction.clip_id), parts)

    def rescore(self, clip_id: str, labels: str, vision_templates: str = "", text_templates: str = "",
                audio_templates: str = "") -> tuple:
        """Score an analysed clip against other labels or templates; no encoder runs again."""
        with _user_errors():
            _check_labels_and_templates(labels, vision_templates, text_templates, audio_templates)
            analyzer = self.store.find(clip_id) if clip_id else None
            if analyzer is None:
                raise MerClipError("no analysed clip to re-score: analyse a clip first (or again, if the server restarted)")
            templates = _templates(vision_templates, text_templates, audio_templates)
            prediction, parts = self.reader(analyzer).rescore(clip_id, labels, templates) or (
                analyzer.rescore(clip_id, labels, templates), [])
            return self._outputs(prediction, analyzer.cached(clip_id), parts, same_clip=True)

    def show_segment(self, clip_id: str, labels: str, vision_templates: str, text_templates: str,
                     audio_templates: str, choice: str) -> tuple:
        """The bars and stage heatmaps of one utterance (or of the whole clip again), in SEGMENT_VIEW_NAMES order."""
        analyzer = self.store.find(clip_id) if clip_id else None
        if analyzer is None:
            return _skipped(SEGMENT_VIEW_NAMES)
        with _user_errors():
            templates = _templates(vision_templates, text_templates, audio_templates)
            scored = self.reader(analyzer).rescore(clip_id, labels, templates)
        if scored is None:
            return _skipped(SEGMENT_VIEW_NAMES)
        whole, parts = scored
        number = segment_number(choice)
        view = build_segment_view(parts[number - 1].prediction if 0 < number <= len(parts) else whole)
        return (view.bars, *[gr.update(value=f, visible=f is not None) for f in view.stages], view.untrained)

    def analyse_on_page(self, video: str | None, other_media: str | None, labels: str, vision_templates: str,
                        text_templates: str, audio_templates: str, frames: float, detect_faces: bool, transcript: str,
                        clip: str | None, whisper: str | None, checkpoint: str | None,
                        progress: gr.Progress = gr.Progress()) -> tuple:
        """The Analyse button: the video, or else the photo or sound file; bad labels are reported
        by the labels box and the figures on screen stay."""
        return _on_page(lambda: self.predict(video or other_media, labels, vision_templates, text_templates,
                                             audio_templates, frames, detect_faces, transcript, clip, whisper,
                                             checkpoint, progress))

    def rescore_on_page(self, clip_id: str, labels: str, vision_templates: str, text_templates: str,
                        audio_templates: str) -> tuple:
        """A new label set: re-score the clip on screen, if any (a mistake in the labels is said either way)."""
        return self._rescore_on_page(clip_id, labels, (vision_templates, text_templates, audio_templates), "")

    def rescore_or_explain(self, clip_id: str, labels: str, vision_templates: str, text_templates: str,
                           audio_templates: str) -> tuple:
        """Enter or Re-score: as `rescore_on_page`, and when no clip is analysed yet, say to press Analyse."""
        return self._rescore_on_page(clip_id, labels, (vision_templates, text_templates, audio_templates),
                                     NO_CLIP_NOTE)

    def _rescore_on_page(self, clip_id: str, labels: str, templates: tuple[str, str, str], no_clip_note: str) -> tuple:
        if not clip_id or self.store.find(clip_id) is None:
            return _on_page(lambda: _checked(labels, *templates), note=no_clip_note)
        return _on_page(lambda: self.rescore(clip_id, labels, *templates))

    @staticmethod
    def cleared() -> tuple:
        """The page's outputs emptied (the video was removed)."""
        empty = {"gallery": [], "transcript": [], "result": None, "download": None, "bars": None, "segments_csv": None,
                 "segment_choice": gr.update(choices=[], value=None, visible=False)}
        figures = {f"stage_{i + 1}" for i in range(STAGE_SLOTS)} | {"timeline", "segments"}
        return tuple(gr.update(value=None, visible=True) if name in figures else empty.get(name, "")
                     for name in PAGE_OUTPUT_NAMES)

    def _outputs(self, prediction, analysis, parts, same_clip: bool = False) -> tuple:
        """The outputs in OUTPUT_NAMES order; re-scoring leaves the crops gallery as it is (saves re-encoding it)."""
        view: PageView = build_view(prediction, analysis, self.served, crops=not same_clip, parts=parts)
        stages = [gr.update(value=figure, visible=figure is not None) for figure in view.stages]
        timeline = gr.update(value=view.timeline, visible=view.timeline is not None)
        segments = gr.update(value=view.segments, visible=view.segments is not None)
        choice = gr.update(choices=view.segment_choices, value=view.segment_choices[0], visible=len(view.segment_choices) > 1)
        return (view.bars, *stages, timeline, gr.skip() if same_clip else view.gallery, view.transcript, view.summary,
                view.warnings, view.result, view.download, view.clip_id, view.untrained, segments, choice,
                view.segments_csv)


def _on_page(analyse: Callable[[], tuple], note: str = "") -> tuple:
    """`analyse()`'s outputs plus the labels-box note (`note`, or cleared) and the stale notice (hidden);
    when the labels or templates are at fault, only the note changes: the visitor fixes them and the
    figures stay."""
    try:
        return (*analyse(), note, "")
    except LabelMistake as mistake:
        return (*_skipped(OUTPUT_NAMES), f"⚠️ {mistake.note}", gr.skip())


def _checked(labels: str, *templates: str) -> tuple:
    with _user_errors():
        _check_labels_and_templates(labels, *templates)
    return _skipped(OUTPUT_NAMES)


def _check_labels_and_templates(labels: str, vision: str, text: str, audio: str) -> None:
    """Raise the visitor's mistake here, on the CPU and before any analysis: a LabelError from a
    ZeroGPU worker would come back as a generic worker error, and only after the whole analysis."""
    parse_labels(labels)
    for modality, given in _templates(vision, text, audio).items():
        parse_templates(given, modality)


def _skipped(names: tuple[str, ...]) -> tuple:
    return tuple(gr.skip() for _ in names)


def _templates(vision: str, text: str, audio: str) -> dict[str, str]:
    given = {"vision": vision, "text": text, "audio": audio}
    return {m: t.strip() for m, t in given.items() if t and t.strip()}


class LabelMistake(gr.Error):
    """A `LabelError` on its way to the visitor (API clients get it as any other error); `note` is
    the same line as Markdown for the page, the visitor's text shown as typed."""

    def __init__(self, error: LabelError) -> None:
        super().__init__(html.escape(str(error)), print_exception=False)
        self.note = markdown_text(str(error))


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except LabelError as exc:
        raise LabelMistake(exc) from None
    except MerClipError as exc:
        raise gr.Error(html.escape(str(exc)), print_exception=False) from None  # messages may quote file names
    except gr.Error:
        raise
    except Exception as exc:  # a bug or an input nobody foresaw: log it, keep serving
        log.exception("merclip: analysis failed")
        raise gr.Error(f"internal error while analysing ({type(exc).__name__}); the server keeps running",
                       print_exception=False) from None
