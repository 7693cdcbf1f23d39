"""The page's figures, drawn with matplotlib from a `Prediction`.

Figures are built with `matplotlib.figure.Figure` (not pyplot), so concurrent
requests never share pyplot's global state and nothing piles up in its registry.
Each figure carries its title inside (the page hides Gradio's panel tags, which cover
a figure's top-left corner on a phone) and a one-line text summary as its matplotlib
label, ending with the kind of plot, which `demo.described_plot` makes the image's alt
text ("... Bar plot visualising provided data"). Sizes are chosen so that text stays
readable when a phone shrinks the figure to its width.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from merclip.result import Prediction, StageAttention
from merclip.segmented import SegmentPrediction

WINNER = "#d62728"
RUNNERS_UP = ("#1f77b4", "#2ca02c")  # the 2nd and 3rd labels of the timeline; no other colour is red
OTHERS = "#8fa8c8"
BACKGROUND_LINE = "#b8b8b8"
WIDTH = 5.0  # inches at 100 dpi: 500 px, about 1.5x a phone's figure width
FONT = 11
STAGE_NAMES = {"text": "Words", "audio": "Voice", "vision": "Face"}
STAGE_CAPTIONS = {"text": "which words each label looked at", "audio": "which moments of the voice each label listened to",
                  "vision": "which video frames each label looked at"}
AXIS_NAMES = {"text": "words of the transcript", "audio": "time in the audio (s)", "vision": "time of the video frame (s)"}
MAX_WORD_COLUMNS = 24  # more words than this: the top label's row only, the words wrapped in rows, each readable
WORDS_PER_ROW = 8
MAX_WORD_LINES = 40  # 320 words; the JSON result has every word's attention
MAX_TIME_COLUMNS = 48  # more audio or video elements are pooled into this many time bins
MAX_TIME_TICKS = 8
EVEN_SHADE = 3.0  # the colour scale tops out at 3x the even share at least, so even attention stays dark
TIMELINE_COLOURED = 3  # the top labels drawn in colour and named at their line's end; the rest grey

# Labels and transcript words are typed by visitors: "$\\frac{a}$" must be drawn as typed,
# not parsed as TeX (a malformed formula would make drawing the figure fail).
matplotlib.rcParams["text.parse_math"] = False


def weighted_cosine(prediction: Prediction) -> list[float]:
    """Each label's raw CLIP cosine, mixed over the modalities by the prior weights used for scoring."""
    total = np.zeros(len(prediction.labels))
    for modality, weight in prediction.prior_weights.items():
        total += weight * np.asarray(prediction.cosines[modality])
    return total.tolist()


def similarity_bars(prediction: Prediction) -> Figure:
    """Labels sorted by probability, the winner highlighted; each bar says probability and raw cosine."""
    order = np.argsort(prediction.probs)  # ascending: barh draws the first at the bottom
    labels = [prediction.labels[i] for i in order]
    probs = [prediction.probs[i] for i in order]
    cosines = weighted_cosine(prediction) if prediction.prior_weights else None
    figure = Figure(figsize=(WIDTH, 1.2 + 0.36 * len(labels)), layout="constrained")
    axes = figure.subplots()
    colours = [WINNER if label == prediction.top_label else OTHERS for label in labels]
    bars = axes.barh(labels, probs, color=colours)
    for bar, i in zip(bars, order):
        text = f"{prediction.probs[i]:.0%}" + (f" · cos {cosines[i]:+.3f}" if cosines else "")
        axes.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=FONT - 1)
    axes.set_xlim(0, min(1.0, max(probs) * 1.6 + 0.05))
    axes.tick_params(labelsize=FONT)
    axes.set_xlabel("probability" + ("\ncos: raw CLIP cosine, weighted over the modalities" if cosines else ""),
                    fontsize=FONT - 1)
    axes.set_title(f"Which label fits best: {prediction.top_label}", loc="left", fontsize=FONT + 2)
    axes.spines[["top", "right"]].set_visible(False)
    ranked = np.argsort(prediction.probs)[::-1]
    figure.set_label("Label probabilities: " + ", ".join(f"{prediction.labels[i]} {prediction.probs[i]:.0%}"
                                                         for i in ranked) + ". Bar")
    return figure


def stage_heatmap(stage: StageAttention, labels: Sequence[str], top: int) -> Figure:
    """Attention of one trained decoder stage as a multiple of the even share (1 = every element alike):
    labels as rows (the winning label `top` marked), words or seconds as columns. A long transcript
    shows the winning label's row only, its words wrapped so that every one stays readable."""
    attention = np.asarray(stage.attention, dtype=float)
    name = STAGE_NAMES.get(stage.modality, stage.modality)
    if stage.modality == "text" and attention.shape[1] > MAX_WORD_COLUMNS:
        figure = _wrapped_words(stage, labels[top], attention[top])
    else:
        figure = _label_rows(stage, labels, top, attention)
    peak = int(np.argmax(attention[top]))
    element = stage.elements[peak]
    figure.set_label(f"{name} stage attention: the label {labels[top]} looked most at "
                     + (f"the word '{element}'" if isinstance(element, str) else f"{element:.1f} s")
                     + f", {attention[top, peak] * attention.shape[1]:.1f} times the even share. Heatmap")
    return figure


def _label_rows(stage: StageAttention, labels: Sequence[str], top: int, attention: np.ndarray) -> Figure:
    elements = list(stage.elements)
    if stage.modality != "text" and attention.shape[1] > MAX_TIME_COLUMNS:
        attention, elements = _pooled(attention, elements, MAX_TIME_COLUMNS)
    relative = attention * attention.shape[1]
    columns = relative.shape[1]
    figure = Figure(figsize=(WIDTH, 1.6 + 0.32 * len(labels) + (0.5 if stage.modality == "text" else 0)),
                    layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(relative, aspect="auto", cmap="magma", interpolation="nearest",
                        norm=Normalize(0.0, max(EVEN_SHADE, float(relative.max()))))
    figure.colorbar(image, ax=axes, label="x even share (brighter = more)", fraction=0.04, pad=0.01)
    axes.set_yticks(range(len(labels)), [("▶ " if row == top else "") + label for row, label in enumerate(labels)],
                    fontsize=FONT - 1)
    axes.get_yticklabels()[top].set_fontweight("bold")
    axes.add_patch(matplotlib.patches.Rectangle((-0.5, top - 0.5), columns, 1, fill=False, edgecolor="#22d3ee",
                                                linewidth=2))
    if stage.modality == "text":
        axes.set_xticks(range(columns), [str(e) for e in elements], rotation=60, ha="right", fontsize=FONT - 1)
    else:
        ticks = sorted({round(i) for i in np.linspace(0, columns - 1, min(columns, MAX_TIME_TICKS))})
        axes.set_xticks(ticks, [_element_label(elements[i]) for i in ticks], fontsize=FONT - 1)
    axes.set_xlabel(AXIS_NAMES.get(stage.modality, stage.modality), fontsize=FONT - 1)
    _stage_title(axes, stage)
    return figure


def _wrapped_words(stage: StageAttention, label: str, row: np.ndarray) -> Figure:
    total = len(stage.elements)
    words = [str(e) for e in stage.elements[:MAX_WORD_LINES * WORDS_PER_ROW]]
    relative = row[:len(words)] * total
    lines = -(-len(words) // WORDS_PER_ROW)
    grid = np.full((lines, WORDS_PER_ROW), np.nan)
    grid.flat[:len(words)] = relative
    figure = Figure(figsize=(WIDTH, 1.0 + 0.34 * lines), layout="constrained")
    axes = figure.subplots()
    norm = Normalize(0.0, max(EVEN_SHADE, float(relative.max())))
    image = axes.imshow(grid, aspect="auto", cmap="magma", norm=norm, interpolation="nearest")
    figure.colorbar(image, ax=axes, label="x even share (brighter = more)", fraction=0.04, pad=0.01)
    for index, (word, value) in enumerate(zip(words, relative)):
        axes.text(index % WORDS_PER_ROW, index // WORDS_PER_ROW, word[:14], ha="center", va="center", fontsize=FONT - 2,
                  color="black" if norm(value) > 0.6 else "white")
    axes.set_xticks([])
    axes.set_yticks([])
    shown = f"the transcript's {total} words" if len(words) == total else f"the first {len(words)} of {total} words"
    axes.set_xlabel(f"{shown}, read left to right, row by row", fontsize=FONT - 1)
    _stage_title(axes, stage, f"the top label '{label}' only")
    return figure


def _stage_title(axes, stage: StageAttention, rows: str = "") -> None:
    name = STAGE_NAMES.get(stage.modality, stage.modality)
    caption = STAGE_CAPTIONS.get(stage.modality, "what each label attended to")
    axes.set_title(f"{name} stage\n{caption}" + (f",\n{rows}" if rows else ""), loc="left", fontsize=FONT + 1)


def _pooled(attention: np.ndarray, elements: list, bins: int) -> tuple[np.ndarray, list]:
    """Attention summed over `bins` consecutive runs of elements; each bin named by its first element."""
    edges = np.linspace(0, attention.shape[1], bins + 1).round().astype(int)
    pooled = np.add.reduceat(attention, edges[:-1], axis=1)
    return pooled, [elements[start] for start in edges[:-1]]


def frame_timeline(prediction: Prediction) -> Figure | None:
    """Each label's cosine with each sampled frame's face over the clip (None without video frames):
    the top labels in colour and named at their line's end, the others grey."""
    if prediction.frame_similarity is None:
        return None
    ranked = list(np.argsort(prediction.probs)[::-1])
    coloured = dict(zip(ranked[:TIMELINE_COLOURED], (WINNER, *RUNNERS_UP)))
    figure = Figure(figsize=(WIDTH, 3.2), layout="constrained")
    axes = figure.subplots()
    times = prediction.frame_times
    for row in [r for r in range(len(prediction.labels)) if r not in coloured]:
        axes.plot(times, prediction.frame_similarity[row], color=BACKGROUND_LINE, linewidth=0.9, zorder=1)
    for row, colour in reversed(coloured.items()):
        values = prediction.frame_similarity[row]
        axes.plot(times, values, color=colour, linewidth=2.4 if colour == WINNER else 1.6, marker="o", markersize=3,
                  zorder=3)
        axes.annotate(prediction.labels[row][:18], (times[-1], values[-1]), xytext=(4, 0), textcoords="offset points",
                      va="center", fontsize=FONT - 1, color=colour, annotation_clip=False)
    others = len(prediction.labels) - len(coloured)
    axes.set_xlabel("time (s)" + (f"; grey: the other {others} labels" if others else ""), fontsize=FONT - 1)
    axes.set_ylabel("cosine with the label", fontsize=FONT - 1)
    axes.set_title("Face only: each label's similarity\nto each sampled frame", loc="left", fontsize=FONT + 1)
    axes.margins(x=0.02)
    axes.grid(alpha=0.3)
    figure.set_label("Face similarity over time: " + ", ".join(
        f"{prediction.labels[r]} from {prediction.frame_similarity[r][0]:+.2f} to {prediction.frame_similarity[r][-1]:+.2f}"
        for r in coloured) + ". Line")
    return figure


def _element_label(element: str | float) -> str:
    return element if isinstance(element, str) else f"{element:.1f}"


def segment_timeline(parts: Sequence[SegmentPrediction], labels: Sequence[str]) -> Figure | None:
    """Each utterance (or window) as a span on the clip's time axis, coloured by its top label and
    numbered as in the list under the figure; with anchored labels, the expected sentiment too."""
    if not parts:
        return None
    colours = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    colour_of = {label: colours(i % colours.N) for i, label in enumerate(labels)}
    anchored = all(p.prediction.sentiment is not None for p in parts)
    figure = Figure(figsize=(WIDTH, 2.2 + (0.9 if anchored else 0)), layout="constrained")
    axes = figure.subplots()
    pixels_per_second = WIDTH * 100 * 0.85 / max(p.end for p in parts)
    for number, part in enumerate(parts, start=1):
        top = part.prediction.top_label
        axes.broken_barh([(part.start, max(part.end - part.start, 0.05))], (0, 1), color=colour_of[top])
        axes.text((part.start + part.end) / 2, 0.62, str(number), ha="center", va="center", fontsize=FONT - 1,
                  color="white", fontweight="bold")
        room = int((part.end - part.start) * pixels_per_second / 6.5)  # characters that fit in the span
        if part.text and room >= 6:
            words = part.text if len(part.text) <= room else part.text[:room - 1] + "…"
            axes.text((part.start + part.end) / 2, 0.3, words, ha="center", va="center", fontsize=FONT - 3,
                      color="white")
    shown = list(dict.fromkeys(p.prediction.top_label for p in parts))
    axes.legend(handles=[matplotlib.patches.Patch(color=colour_of[label], label=label[:18]) for label in shown],
                fontsize=FONT - 2, loc="upper left", bbox_to_anchor=(0, -0.35), ncol=min(4, len(shown)), frameon=False)
    axes.set_yticks([])
    axes.set_xlim(0, max(p.end for p in parts))
    axes.set_ylim(0, 1)
    axes.set_xlabel("time (s)", fontsize=FONT - 1)
    if anchored:
        curve = axes.twinx()
        curve.plot([(p.start + p.end) / 2 for p in parts], [p.prediction.sentiment for p in parts], color="black",
                   marker="o", markersize=4, linewidth=1.5)
        curve.set_ylabel("expected\nsentiment", fontsize=FONT - 2)
        curve.tick_params(labelsize=FONT - 2)
    kind = "utterance" if any(p.text for p in parts) else "window"
    axes.set_title(f"{len(parts)} {kind}{'s' if len(parts) > 1 else ''}, coloured by the top label", loc="left",
                   fontsize=FONT + 1)
    figure.set_label("Utterances over time: " + "; ".join(
        f"{p.start:.1f}-{p.end:.1f} s {p.prediction.top_label}" for p in parts) + ". Timeline")
    return figure
