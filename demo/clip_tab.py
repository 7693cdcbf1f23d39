"""The "Analyse a clip" tab's events and the API's: analyse a clip, re-score it, turn failures into messages.

Every failure a visitor can cause becomes a `gr.Error` with one readable line; anything
unexpected is logged with its traceback and reported as an internal error, so one bad
request never takes the server down or leaks a stack trace into the page.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import gradio as gr

from demo.model_store import ModelChoice
from demo.palette import LabelColours
from demo.views import STAGE_SLOTS, PageView, build_view, markdown_text, segment_number
from demo.zero_gpu import next_step
from merclip import MerClipError
from merclip.errors import LabelError
from merclip.head import Prediction
from merclip.labels import parse_labels, parse_templates
from merclip.limits import Limits
from merclip.media import inspect_media
from merclip.reading import AnalysisOptions, ClipAnalysis, SampledFrame, SegmentMode, SegmentPrediction, SegmentReader

log = logging.getLogger(__name__)

OUTPUT_NAMES = ("bars", *(f"stage_{i + 1}" for i in range(STAGE_SLOTS)), "timeline", "gallery", "transcript", "summary",
                "warnings", "result", "download", "clip_id", "untrained", "segments", "segment_choice", "segments_csv",
                "heading", "figures_image")
# the page also says what went wrong beside the input at fault: the labels box, or the media inputs
PAGE_OUTPUT_NAMES = (*OUTPUT_NAMES, "label_note", "stale", "media_note")
UTTERANCES = SegmentMode("utterance")  # the page reads every clip by utterance (in windows without speech)
NO_CLIP_NOTE = "Press **Analyse** first: Enter re-scores a clip that has been analysed."
STALE_NOTE = "The figures below are for the previous labels: press Enter in the labels box (or Re-score) to update them."


class Readers(Protocol):
    """Where a service's readers come from: a `ModelStore`, or the first screen's `ExampleStore`."""

    default: ModelChoice

    def reader(self, choice: ModelChoice) -> SegmentReader:
        """The reader of a model choice, loading its models if needed."""

    def find(self, clip_id: str) -> SegmentReader | None:
        """The reader that holds this analysed clip, if any."""


class AnalysisService:
    """Analyses for the page and its API, with the models from a `ModelStore`."""

    def __init__(self, store: Readers, served: Path, limits: Limits = Limits(),
                 also_holding: Sequence[Readers] = ()) -> None:
        """`also_holding`: where other clips the page shows are kept (the first screen's example),
        so that they are re-scored too."""
        self.store = store
        self.served = served
        self.limits = limits
        self.also_holding = also_holding

    def on_api_predict(self, video: str | None, labels: str, vision_templates: str = "", text_templates: str = "",
                       audio_templates: str = "", frames: float = Limits.frames, detect_faces: bool = True,
                       transcript: str = "", clip: str | None = None, whisper: str | None = None,
                       checkpoint: str | None = None, progress: gr.Progress = gr.Progress()) -> tuple:
        """The API's /predict: analyse a video (encoders run once per clip) and score it against the labels."""
        with _user_errors():
            return self._outputs(self._analysed(video, labels, (vision_templates, text_templates, audio_templates),
                                                frames, detect_faces, transcript, ModelChoice(
                                                    clip or self.store.default.clip,
                                                    whisper or self.store.default.whisper,
                                                    checkpoint or self.store.default.checkpoint), progress))

    def on_api_rescore(self, clip_id: str, labels: str, vision_templates: str = "", text_templates: str = "",
                       audio_templates: str = "") -> tuple:
        """The API's /rescore: score an analysed clip against other labels or templates; no encoder runs again."""
        with _user_errors():
            return self._outputs(self._rescored(clip_id, labels, (vision_templates, text_templates, audio_templates)),
                                 crops=False)

    def _analysed(self, video: str | None, labels: str, templates: tuple[str, str, str], frames: float,
                  detect_faces: bool, transcript: str, choice: ModelChoice, progress: gr.Progress) -> _Scored:
        _check_labels_and_templates(labels, *templates)
        if not video:
            raise MerClipError("no video: upload a clip or record one with the webcam first")
        progress(0.0, desc="loading models")
        reader = self.store.reader(choice)
        options = AnalysisOptions(limits=replace(self.limits, frames=int(frames)), detect_faces=bool(detect_faces),
                                  transcript=transcript.strip() or None)
        prediction, parts = reader.read(video, labels, UTTERANCES, _templates(*templates), options,
                                        progress=lambda fraction, what: progress(fraction, desc=what),
                                        frame_cap=options.limits.frames)
        return _Scored(prediction, reader.analyzer.cached(prediction.clip_id), parts,
                       reader.sampled_frames(prediction.clip_id))

    def _rescored(self, clip_id: str, labels: str, templates: tuple[str, str, str]) -> _Scored:
        _check_labels_and_templates(labels, *templates)
        reader = self._find(clip_id)
        if reader is None:
            raise MerClipError("no analysed clip to re-score: analyse a clip first (or again, if the server restarted)")
        given = _templates(*templates)
        prediction, parts = reader.rescore(clip_id, labels, given) or (reader.analyzer.rescore(clip_id, labels, given), [])
        return _Scored(prediction, reader.analyzer.cached(clip_id), parts, reader.sampled_frames(clip_id))

    def on_analyse(self, video: str | None, other_media: str | None, labels: str, vision_templates: str,
                   text_templates: str, audio_templates: str, frames: float, detect_faces: bool, transcript: str,
                   clip: str | None, whisper: str | None, checkpoint: str | None, colours: LabelColours,
                   progress: gr.Progress = gr.Progress()) -> tuple:
        """The Analyse button (also an example clicked, and the Live tab's clip): the video, or else the
        photo or sound file. A mistake is said beside
        the input at fault (the labels box, or the media inputs) and the figures on screen stay."""
        choice = ModelChoice(clip or self.store.default.clip, whisper or self.store.default.whisper,
                             checkpoint or self.store.default.checkpoint)
        return _on_page(lambda: self._outputs(self._analysed(
            video or other_media, labels, (vision_templates, text_templates, audio_templates), frames, detect_faces,
            transcript, choice, progress), colours=colours, on_page=True), colours, mistakes_beside="media")

    def on_menu_choice(self, clip_id: str, labels: str, vision_templates: str, text_templates: str,
                       audio_templates: str, choice: str | None, colours: LabelColours) -> tuple:
        """A label set or a part (under the timeline) chosen from its menu: the clip on screen scored
        again with the labels in the box and every panel redrawn for the chosen part (a mistake in the
        labels is said either way; with no clip analysed, nothing else happens)."""
        return self._rescore_on_page(clip_id, labels, (vision_templates, text_templates, audio_templates), choice,
                                     colours, "")

    def on_rescore(self, clip_id: str, labels: str, vision_templates: str, text_templates: str,
                   audio_templates: str, choice: str | None, colours: LabelColours) -> tuple:
        """Enter (in the labels or a templates box) or Re-score: as `on_menu_choice`, and when no clip
        is analysed yet, say to press Analyse."""
        return self._rescore_on_page(clip_id, labels, (vision_templates, text_templates, audio_templates), choice,
                                     colours, NO_CLIP_NOTE)

    def _rescore_on_page(self, clip_id: str, labels: str, templates: tuple[str, str, str], choice: str | None,
                         colours: LabelColours, no_clip_note: str) -> tuple:
        if self._find(clip_id) is None:
            return _on_page(lambda: _checked(labels, *templates), colours, note=no_clip_note)
        return _on_page(lambda: self._outputs(self._rescored(clip_id, labels, templates),
                                              selected=segment_number(choice), colours=colours, on_page=True), colours)

    def _find(self, clip_id: str) -> SegmentReader | None:
        """The reader that holds an analysed clip: the store's, or one the page's example keeps."""
        for finder in (self.store, *self.also_holding) if clip_id else ():
            reader = finder.find(clip_id)
            if reader is not None:
                return reader
        return None

    def on_new_media(self, path: str | None) -> tuple:
        """A new upload or recording: the analysed clip is forgotten (its clip_id) and the other input
        emptied; a file that cannot be read is said at once, beside the inputs, and removed."""
        if not path:
            return gr.skip(), gr.skip(), gr.skip(), ""
        try:
            inspect_media(path, self.limits)  # the server's own limits (--max-mb, --max-seconds)
        except MerClipError as exc:  # nothing else changes: the clip on screen is still the one analysed
            return gr.skip(), gr.skip(), None, _media_note(Path(path).name, str(exc))
        return "", None, gr.skip(), ""

    def on_refused_upload(self, refused: str) -> str:
        """The note for a file the page refused to upload (over the limit; `page.PAGE_HEAD` sends its
        name and size as JSON): the file named, beside the inputs, instead of Gradio's toast."""
        try:
            given = json.loads(refused)
            name, size_mb = str(given["name"]), float(given["bytes"]) / 2**20
        except (ValueError, KeyError, TypeError):  # sent by a client, not necessarily the page
            return gr.skip()
        return _media_note(name, f"the file is {size_mb:.0f} MB; the limit is {self.limits.max_file_mb:.0f} MB. "
                                 "It was not uploaded")

    @staticmethod
    def on_clear() -> tuple:
        """The page's outputs emptied (the video was removed)."""
        empty = {"gallery": [], "transcript": [], "result": None, "download": None, "bars": None, "segments_csv": None,
                 "figures_image": None,
                 "segment_choice": gr.update(choices=[], value=None, visible=False)}
        figures = {f"stage_{i + 1}" for i in range(STAGE_SLOTS)} | {"timeline", "segments"}
        return tuple(gr.update(value=None, visible=True) if name in figures else empty.get(name, "")
                     for name in PAGE_OUTPUT_NAMES)

    def _outputs(self, scored: _Scored, crops: bool = True, selected: int = 0,
                 colours: LabelColours | None = None, on_page: bool = False) -> tuple:
        """The outputs in OUTPUT_NAMES order; the page's crops follow the part chosen (`selected`) and
        their panel says which (`on_page`; the API's are plain values), the API's re-score
        (`crops=False`) leaves them out (its caller has them)."""
        view: PageView = build_view(scored.prediction, scored.analysis, self.served, crops=crops,
                                    parts=scored.parts, selected=selected, colours=colours, frames=scored.frames)
        shown = view.shown
        stages = [gr.update(value=figure, visible=figure is not None) for figure in shown.stages]
        timeline = gr.update(value=view.timeline, visible=view.timeline is not None)
        segments = gr.update(value=shown.segments, visible=shown.segments is not None)
        choice = gr.update(choices=view.segment_choices, value=view.segment_choice,
                           visible=len(view.segment_choices) > 1)
        gallery = view.gallery if crops else gr.skip()
        if crops and on_page:
            gallery = gr.update(value=view.gallery, label=view.gallery_label)
        return (shown.bars, *stages, timeline, gallery, shown.transcript, shown.summary, view.warnings, view.result,
                view.download, view.clip_id, shown.untrained, segments, choice, view.segments_csv, shown.heading,
                view.figures_image)


@dataclass
class _Scored:
    prediction: Prediction
    analysis: ClipAnalysis | None
    parts: list[SegmentPrediction]
    frames: list[SampledFrame]  # the clip's sampled frames, with those added for short parts


def _on_page(analyse: Callable[[], tuple], colours: LabelColours, note: str = "",
             mistakes_beside: str = "labels") -> tuple:
    """`analyse()`'s outputs, then the labels-box note (`note`, or cleared), the stale notice (hidden),
    the media note (cleared) and the visitor's colours. A mistake changes only the note beside the
    input at fault (`mistakes_beside`: "labels" or "media"; label mistakes are always the labels box's):
    the result panels keep what they show, no panel is marked as failed, no toast is raised."""
    try:
        return (*analyse(), note, "", "", colours)
    except LabelError as mistake:
        return (*_skipped(OUTPUT_NAMES), f"⚠️ {markdown_text(str(mistake))}", gr.skip(), "", colours)
    except MerClipError as mistake:
        said = f"⚠️ {markdown_text(str(mistake))}"
    except gr.Error as refusal:  # ZeroGPU's (quota, no GPU free, a slot that ran out): its reason, and what to do
        said = f"⚠️ {markdown_text(_error_line(refusal))} {next_step(refusal)}".rstrip()
    except Exception as exc:  # a bug or an input nobody foresaw: log it, keep serving
        log.exception("merclip: analysis failed")
        said = f"⚠️ internal error while analysing ({type(exc).__name__}); the server keeps running"
    beside_media = mistakes_beside == "media"
    return (*_skipped(OUTPUT_NAMES), "" if beside_media else said, gr.skip(), said if beside_media else "", colours)


def _media_note(name: str, problem: str) -> str:
    """A media file's problem, beside the inputs, naming the file (once)."""
    said = problem if name in problem else f"{name}: {problem}"
    return f"⚠️ {markdown_text(said)}"


def _checked(labels: str, *templates: str) -> tuple:
    _check_labels_and_templates(labels, *templates)
    return _skipped(OUTPUT_NAMES)


def _check_labels_and_templates(labels: str, vision: str, text: str, audio: str) -> None:
    """Raise the visitor's mistake here, on the CPU and before any analysis: a LabelError from a
    ZeroGPU worker would come back as a generic worker error, and only after the whole analysis."""
    parse_labels(labels)
    for modality, given in _templates(vision, text, audio).items():
        parse_templates(given, modality)


def _error_line(error: gr.Error) -> str:
    """A Gradio error as one sentence: its title (when it has its own) and its text message (an
    HTML message from `spaces` carries a text one)."""
    title, message = getattr(error, "title", "Error"), str(error.message).strip()
    line = message if title == "Error" else f"{title}: {message}"
    return line if line.endswith(".") else f"{line}."


def _skipped(names: tuple[str, ...]) -> tuple:
    return tuple(gr.skip() for _ in names)


def _templates(vision: str, text: str, audio: str) -> dict[str, str]:
    given = {"vision": vision, "text": text, "audio": audio}
    return {m: t.strip() for m, t in given.items() if t and t.strip()}


@contextmanager
def _user_errors() -> Iterator[None]:
    """The API's errors: the visitor's mistakes as one readable line, anything else logged."""
    try:
        yield
    except MerClipError as exc:
        raise gr.Error(html.escape(str(exc)), print_exception=False) from None  # messages may quote file names
    except gr.Error:
        raise
    except Exception as exc:  # a bug or an input nobody foresaw: log it, keep serving
        log.exception("merclip: analysis failed")
        raise gr.Error(f"internal error while analysing ({type(exc).__name__}); the server keeps running",
                       print_exception=False) from None
