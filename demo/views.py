"""From one analysis to what every output component of the page shows."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from demo.plots import STAGE_NAMES, frame_timeline, similarity_bars, stage_heatmap
from demo.served_files import prune, write_image, write_once
from merclip.clip_analysis import ClipAnalysis
from merclip.result import Prediction

STAGE_SLOTS = 3  # one heatmap slot per modality the decoder can have


@dataclass
class PageView:
    """The values of the page's outputs, in the order `OUTPUT_NAMES` lists."""

    bars: Figure
    stages: list[Figure | None]
    untrained: str
    timeline: Figure | None
    gallery: list[tuple[str, str]]
    transcript: list[tuple[str, float | None]]
    summary: str
    warnings: str
    result: dict
    download: str
    clip_id: str


def build_view(prediction: Prediction, analysis: ClipAnalysis, served: Path, crops: bool = True) -> PageView:
    """Figures, texts and the files to serve (written into `served`, which keeps only the newest);
    `crops=False` leaves the gallery empty (a re-score shows the crops already on the page)."""
    top = prediction.labels.index(prediction.top_label)
    stages = [stage_heatmap(stage, prediction.labels, top) for stage in prediction.stages if stage.trained]
    result = prediction.to_dict()
    view = PageView(
        bars=similarity_bars(prediction),
        stages=stages + [None] * (STAGE_SLOTS - len(stages)),
        untrained=untrained_note(prediction),
        timeline=frame_timeline(prediction),
        gallery=face_gallery(analysis, served) if crops else [],
        transcript=shaded_transcript(prediction),
        summary=summary_markdown(prediction),
        warnings=warnings_markdown(prediction.warnings),
        result=result,
        download=str(write_result(result, served)),
        clip_id=prediction.clip_id or "",
    )
    prune(served)
    return view


def untrained_note(prediction: Prediction) -> str:
    """One line naming the stages left out because their adapter is untrained (their attention means nothing)."""
    names = [STAGE_NAMES.get(stage.modality, stage.modality) for stage in prediction.stages if not stage.trained]
    if not names:
        return ""
    return (f"*Not drawn: the {' and '.join(names)} stage{'s' if len(names) > 1 else ''} "
            f"read{'' if len(names) > 1 else 's'} through an adapter that is not trained yet, so "
            f"{'their' if len(names) > 1 else 'its'} attention means nothing. A checkpoint trained with `train/` draws every stage.*")


def face_gallery(analysis: ClipAnalysis, served: Path) -> list[tuple[str, str]]:
    """Each sampled crop as a file, captioned with its time and whether a face was found there."""
    times = analysis.features.frame_times or [0.0] * len(analysis.crops)
    if not analysis.face_detection:
        return [(str(write_image(served, crop)), f"{t:.1f} s · face detection off: whole frame")
                for crop, t in zip(analysis.crops, times)]
    return [(str(write_image(served, crop)), f"{t:.1f} s" + ("" if face else " · no face: whole frame"))
            for crop, t, face in zip(analysis.crops, times, analysis.faces)]


def shaded_transcript(prediction: Prediction) -> list[tuple[str, float | None]]:
    """The transcript's words, each with the top label's text attention scaled to 0..1 (None: no text stage)."""
    words = [w["word"] for w in (prediction.transcript or {}).get("words", [])]
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
    lines.append("\nTimings: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in prediction.timings_ms.items())
                 + f" (total {total:.0f} ms)")
    return "\n".join(lines)


def warnings_markdown(warnings: list[str]) -> str:
    return "\n".join(f"- ⚠️ {markdown_text(w)}" for w in warnings) if warnings else ""


def markdown_text(value: str) -> str:
    """Visitors' text (labels, and the warnings that quote labels) shown as typed in Markdown:
    HTML escaped, Markdown's own markup characters escaped."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~>])", r"\\\1", html.escape(value, quote=False))


def write_result(result: dict, folder: Path) -> Path:
    """The JSON result as a file to download."""
    return write_once(folder, json.dumps(result, ensure_ascii=False, indent=1).encode(), "merclip", ".json")
