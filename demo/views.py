"""From one analysis to what every output component of the page shows."""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from demo.figures import (STAGE_NAMES, caption_figure, figures_png, frame_timeline, label_colours, segment_timeline,
                          similarity_bars, stage_heatmaps)
from demo.palette import LabelColours
from demo.served_files import prune, write_image, write_once
from merclip.head import Prediction
from merclip.reading import ClipAnalysis, SampledFrame, Segment, SegmentPrediction, csv_writer, rows_of, within

STAGE_SLOTS = 3  # one heatmap slot per modality the decoder can have
WHOLE_CLIP = "Whole clip"
WHOLE_CLIP_CROPS = "Sampled face crops"


@dataclass
class SelectionView:
    """What the page shows of the part chosen under the utterance timeline (or of the whole clip):
    everything that describes one prediction, so that no panel speaks of another part."""

    heading: str
    bars: Figure
    stages: list[Figure | None]
    untrained: str
    transcript: list[tuple[str, float | None]]
    summary: str
    segments: Figure | None


@dataclass
class PageView:
    """The values of the page's outputs, `OUTPUT_NAMES` lists their order."""

    shown: SelectionView
    timeline: Figure | None  # of the part shown, as the gallery
    gallery: list[tuple[str, str]]
    gallery_label: str
    figures_image: str  # the figures shown as one PNG file
    warnings: str
    result: dict
    download: str
    clip_id: str
    segment_choices: list[str] = field(default_factory=lambda: [WHOLE_CLIP])
    segments_csv: str | None = None
    shown_number: int = 0  # the part shown (1-based), 0 for the whole clip

    @property
    def segment_choice(self) -> str:
        return self.segment_choices[self.shown_number]


def build_view(prediction: Prediction, analysis: ClipAnalysis | None, served: Path, crops: bool = True,
               parts: Sequence[SegmentPrediction] = (), selected: int = 0, colours: LabelColours | None = None,
               source_name: str = "", frames: Sequence[SampledFrame] | None = None) -> PageView:
    """Figures, texts and the files to serve (written into `served`, which keeps only the newest);
    `crops=False` leaves the gallery empty (the API's re-score: its caller has the crops);
    `parts`: the clip's utterances (or windows), drawn on a timeline and listed to choose from;
    `selected`: the utterance the page shows (1-based; 0 or out of range: the whole clip);
    `colours`: the visitor's colour of each label, the same in every figure of the session;
    `frames`: the clip's sampled frames with those added for short utterances, of which a chosen
    utterance shows its own (without: the analysis' frames); the whole clip shows the analysis' frames."""
    palette = label_colours(prediction, colours)
    selected = selected if 0 < selected <= len(parts) else 0
    result = prediction.to_dict() | ({"segments": [part.to_dict() for part in parts]} if parts else {})
    name = source_name or (Path(analysis.info.path).name if analysis is not None else "clip")
    part = part_name(parts, selected)
    shown = build_selection_view(prediction, parts, selected, palette)
    timeline = frame_timeline(parts[selected - 1].prediction if selected else prediction, palette, part)
    whole = analysis.sampled_frames() if analysis is not None else []
    if selected:  # the chosen part's frames, as its face timeline has them
        frames = whole if frames is None else frames
        frames = [frames[i] for i in within([f.time for f in frames], [Segment(p.start, p.end) for p in parts],
                                            selected - 1)]
    else:  # the whole clip's, as its face timeline has them
        frames = whole
    shown_figures = [shown.bars, shown.segments, *shown.stages, timeline]
    image = figures_png([caption_figure(f"MER-CLIP · {name}" + (f" · {part}" if part else " · the whole clip")),
                         *(figure for figure in shown_figures if figure is not None)])
    view = PageView(
        shown=shown,
        timeline=timeline,
        gallery=face_gallery(frames, analysis.face_detection, served) if crops and analysis is not None else [],
        gallery_label=f"Face crops in {part}" if part else WHOLE_CLIP_CROPS,
        figures_image=str(write_once(served, image, f"{_file_stem(name)}-figures", ".png")),
        warnings=warnings_markdown(prediction.warnings),
        result=result,
        download=str(write_result(result, served, name)),
        clip_id=prediction.clip_id or "",
        segment_choices=[WHOLE_CLIP] + [f"{n} · {p.start:.1f}-{p.end:.1f} s · {_quoted(p.text) or p.prediction.top_label}"
                                        for n, p in enumerate(parts, start=1)],
        segments_csv=str(write_segments_csv(result, served, name)) if parts else None,
        shown_number=selected,
    )
    prune(served)
    return view


def build_selection_view(whole: Prediction, parts: Sequence[SegmentPrediction], selected: int,
                         colours: Mapping[str, str] | None) -> SelectionView:
    """The panels of one part (`selected`, 1-based) or of the whole clip (0)."""
    shown = parts[selected - 1].prediction if selected else whole
    stages = stage_heatmaps(shown, colours)
    return SelectionView(
        heading=selection_heading(whole, parts, selected),
        bars=similarity_bars(shown, colours=colours),
        stages=stages + [None] * (STAGE_SLOTS - len(stages)),
        untrained=untrained_note(shown),
        transcript=shaded_transcript(shown),
        summary=summary_markdown(shown),
        segments=segment_timeline(parts, whole.labels, colours=colours, selected=selected),
    )


def part_name(parts: Sequence[SegmentPrediction], selected: int) -> str:
    """"utterance 2 (3.1-5.4 s)" for the part shown (1-based), "" for the whole clip."""
    if not selected:
        return ""
    part = parts[selected - 1]
    return f"{_kind(parts)} {selected} ({part.start:.1f}-{part.end:.1f} s)"


def _kind(parts: Sequence[SegmentPrediction]) -> str:
    return "utterance" if any(p.text for p in parts) else "window"


def selection_heading(whole: Prediction, parts: Sequence[SegmentPrediction], selected: int) -> str:
    """One line at the top of the results saying which part of the clip every panel describes."""
    kind = _kind(parts)
    if selected:
        part = parts[selected - 1]
        said = f" · {markdown_text(_quoted(part.text))}" if part.text else ""
        return (f"**Showing {kind} {selected} of {len(parts)} ({part.start:.1f}-{part.end:.1f} s)**{said} · "
                "choose *Whole clip* under the timeline to see the whole clip again")
    span = f" ({parts[0].start:.1f}-{parts[-1].end:.1f} s, {len(parts)} {kind}{'s' if len(parts) != 1 else ''})" if parts else ""
    return f"**Showing the whole clip**{span}"


def _quoted(text: str, room: int = 60) -> str:
    """An utterance's words, shortened at a word boundary with an ellipsis (never cut mid-word)."""
    if len(text) <= room:
        return text
    cut = text[:room].rsplit(" ", 1)[0]
    return cut + "…"


def segment_number(choice: str | None) -> int:
    """1 for "1 · 0.5-2.4 s · ...", 0 for the whole clip."""
    head = (choice or "").split(" · ", 1)[0]
    return int(head) if head.isdigit() else 0


def write_segments_csv(result: dict, folder: Path, source_name: str = "clip") -> Path:
    """One row per utterance, as `merclip predict --csv` writes them, under the clip's own name."""
    buffer = io.StringIO()
    writer = csv_writer(buffer, result["labels"])
    writer.writeheader()
    writer.writerows(rows_of({"file": source_name, "result": result}, result["labels"]))
    return write_once(folder, buffer.getvalue().encode(), f"{_file_stem(source_name)}-utterances", ".csv")


def untrained_note(prediction: Prediction) -> str:
    """One line naming the stages not drawn because no training changed them: an untrained head's
    adapters, or a checkpoint's stages for a modality its training data never had."""
    names = [STAGE_NAMES.get(stage.modality, stage.modality) for stage in prediction.stages if not stage.trained]
    if not names:
        return ""
    plural = len(names) > 1
    return (f"*Not drawn: no training has changed the {' and '.join(names)} stage{'s' if plural else ''}, so "
            f"{'their' if plural else 'its'} attention means nothing and adds nothing to the score. A checkpoint "
            "trained with `train/` on data with this modality draws it.*")


def face_gallery(frames: Sequence[SampledFrame], face_detection: bool, served: Path) -> list[tuple[str, str]]:
    """Each sampled crop as a file, captioned with its time and whether a face was found there."""
    if not face_detection:
        return [(str(write_image(served, f.crop)), f"{f.time:.1f} s · face detection off: whole frame") for f in frames]
    return [(str(write_image(served, f.crop)), f"{f.time:.1f} s" + ("" if f.face else " · no face: whole frame"))
            for f in frames]


def shaded_transcript(prediction: Prediction) -> list[tuple[str, float | None]]:
    """The transcript's words (an utterance's: its text stage's), each with the top label's text
    attention scaled to 0..1 (None: no text stage)."""
    words = [w["word"] for w in (prediction.transcript or {}).get("words", [])]
    if not words and "text" in prediction.modalities:
        words = [str(w) for w in prediction.stage("text").elements]
    if not words:
        return []
    if "text" not in prediction.modalities:
        return [(w + " ", None) for w in words]
    attention = prediction.stage("text").attention[prediction.labels.index(prediction.top_label)]
    scale = float(attention.max()) or 1.0
    return [(w + " ", round(float(a) / scale, 3)) for w, a in zip(words, attention)]


def summary_markdown(prediction: Prediction) -> str:
    """Top label, modalities, each modality's contribution to each label's logit, and timings."""
    lines = [f"### {markdown_text(prediction.top_label)} ({max(prediction.probs):.0%})"]
    if prediction.sentiment is not None:
        lines.append(f"Sentiment score (probability-weighted anchors): **{prediction.sentiment:+.2f}**")
    weights = ", ".join(f"{m} {w:.2f}" for m, w in prediction.prior_weights.items())
    used = ", ".join(prediction.modalities)
    lines.append(f"Modalities used: **{used}**" + (f" · missing: {', '.join(prediction.missing)}" if prediction.missing else "")
                 + (f" · CLIP prior weights: {weights}" if weights else ""))
    sources = list(prediction.contributions)
    lines += ["", "| label | probability | " + " | ".join(sources) + " |", "|---" * (2 + len(sources)) + "|"]
    for i in np.argsort(prediction.probs)[::-1]:
        cells = " | ".join(f"{prediction.contributions[s][i]:+.2f}" for s in sources)
        lines.append(f"| {markdown_text(prediction.labels[i])} | {prediction.probs[i]:.1%} | {cells} |")
    lines.append("\n*Contributions are each source's share of the label's logit (prior weight x CLIP logit, decoder term).*")
    total = sum(prediction.timings_ms.values())
    if total:
        lines.append("\nTimings: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in prediction.timings_ms.items())
                     + f" (total {total:.0f} ms)")
    return "\n".join(lines)


def warnings_markdown(warnings: list[str]) -> str:
    return "\n".join(f"- ⚠️ {markdown_text(w)}" for w in warnings) if warnings else ""


def markdown_text(value: str) -> str:
    """Visitors' text (labels, and the warnings that quote labels) shown as typed in Markdown:
    HTML escaped, Markdown's own markup characters escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1", html.escape(value, quote=False))


def write_result(result: dict, folder: Path, source_name: str = "clip") -> Path:
    """The JSON result as a file to download, named after the clip it describes."""
    return write_once(folder, json.dumps(result, ensure_ascii=False, indent=1).encode(),
                      f"{_file_stem(source_name)}-merclip", ".json")


def _file_stem(name: str) -> str:
    """A file's name without its suffix, in characters safe in any file system (at most 40)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem)[:40].strip("_") or "clip"
