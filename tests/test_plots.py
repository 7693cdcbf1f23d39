"""The page's figures and views show the prediction's own numbers, row for row and column for column."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from demo.plots import WINNER, frame_timeline, similarity_bars, stage_heatmap, weighted_cosine
from demo.served_files import prune
from demo.views import build_view, shaded_transcript, summary_markdown, warnings_markdown, write_result
from merclip.analysis import AnalysisOptions, Analyzer
from merclip.result import Prediction, StageAttention
from merclip.sample_media import speech_clip

LABELS = ["happy", "sad", "angry"]


def prediction(**overrides) -> Prediction:
    values = dict(
        labels=LABELS, probs=[0.2, 0.7, 0.1], logits=[1.0, 2.0, 0.5],
        stages=[StageAttention("stage 1: text", "text", ["so", "sad", "today"],
                               np.array([[0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.4, 0.3, 0.3]])),
                StageAttention("stage 3: vision", "vision", [0.5, 1.5], np.array([[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]]))],
        modalities=["text", "vision"], missing=["audio"], prior_weights={"vision": 0.7, "text": 0.3},
        contributions={"vision": [1.0, 1.5, 0.2], "text": [0.3, 0.5, 0.1], "decoder": [0.0, 0.0, 0.0]},
        cosines={"vision": [0.20, 0.25, 0.18], "text": [0.10, 0.30, 0.05]},
        transcript={"text": "so sad today", "source": "override",
                    "words": [{"word": w, "start": None, "end": None} for w in ["so", "sad", "today"]]},
        frame_times=[0.5, 1.5], frame_similarity=np.array([[0.2, 0.21], [0.24, 0.26], [0.17, 0.19]]),
        timings_ms={"clip_image": 100.0, "label_encoding": 15.0, "decoder": 5.0},
    )
    values.update(overrides)
    return Prediction(**values)


def test_bars_are_sorted_with_the_winner_highlighted_and_show_probability_and_cosine():
    axes = similarity_bars(prediction()).axes[0]
    names = [t.get_text() for t in axes.get_yticklabels()]
    assert names == ["angry", "happy", "sad"]  # bottom to top: the most probable on top
    widths = [bar.get_width() for bar in axes.patches]
    assert widths == pytest.approx([0.1, 0.2, 0.7])
    colours = [bar.get_facecolor() for bar in axes.patches]
    assert colours[2] != colours[0] and colours[2][:3] == pytest.approx(np.array([0xd6, 0x27, 0x28]) / 255, abs=0.01)
    assert WINNER == "#d62728"
    texts = [t.get_text() for t in axes.texts]
    assert "70.0%  cos +0.265" in texts  # 0.7 * 0.25 + 0.3 * 0.30


def test_weighted_cosine_mixes_modalities_by_prior_weight():
    assert weighted_cosine(prediction()) == pytest.approx([0.7 * 0.2 + 0.3 * 0.1, 0.265, 0.7 * 0.18 + 0.3 * 0.05])


def test_an_untrained_stage_is_said_to_be_untrained_not_drawn():
    audio = StageAttention("stage 2: audio", "audio", [0.0, 0.05], np.array([[0.5, 0.5]] * 3), trained=False)
    axes = stage_heatmap(audio, LABELS).axes[0]
    assert len(axes.images) == 0 and axes.get_title(loc="left") == "stage 2: audio (untrained)"
    assert "has not been trained" in axes.texts[0].get_text()


def test_heatmap_rows_are_labels_and_columns_are_words_or_seconds():
    text, vision = prediction().stages
    axes = stage_heatmap(text, LABELS).axes[0]
    assert axes.images[0].get_array().shape == (3, 3)
    assert np.array_equal(np.asarray(axes.images[0].get_array()), text.attention)
    assert [t.get_text() for t in axes.get_yticklabels()] == LABELS
    assert [t.get_text() for t in axes.get_xticklabels()] == ["so", "sad", "today"]
    assert axes.get_title(loc="left") == "stage 1: text"
    assert axes.images[0].get_clim() == (0.0, pytest.approx(0.8))  # one colour scale for the whole stage
    figure = stage_heatmap(vision, LABELS)
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0.5", "1.5"]
    assert len(figure.axes) == 2, "the heatmap has a colour bar"


def test_long_stages_keep_ticks_readable():
    audio = StageAttention("stage 2: audio", "audio", [i / 20 for i in range(400)], np.random.rand(3, 400))
    axes = stage_heatmap(audio, LABELS).axes[0]
    assert axes.images[0].get_array().shape == (3, 400)
    ticks = [t.get_text() for t in axes.get_xticklabels()]
    assert len(ticks) == 12 and ticks[0] == "0.0" and ticks[-1] == f"{399 / 20:.1f}"
    words = StageAttention("stage 1: text", "text", [f"w{i}" for i in range(100)], np.random.rand(3, 100))
    assert len(stage_heatmap(words, LABELS).axes[0].get_xticklabels()) == 40


def test_timeline_has_one_line_per_label_over_frame_times():
    axes = frame_timeline(prediction()).axes[0]
    assert [line.get_label() for line in axes.lines] == LABELS
    assert list(axes.lines[1].get_xdata()) == [0.5, 1.5]
    assert list(axes.lines[1].get_ydata()) == [0.24, 0.26]
    assert axes.lines[1].get_linewidth() > axes.lines[0].get_linewidth(), "the top label stands out"
    assert frame_timeline(prediction(frame_similarity=None, frame_times=[])) is None


def test_transcript_is_shaded_by_the_top_labels_text_attention():
    assert shaded_transcript(prediction()) == [("so ", 0.125), ("sad ", 1.0), ("today ", 0.125)]
    assert shaded_transcript(prediction(transcript=None)) == []


def test_summary_lists_modalities_contributions_and_timings():
    text = summary_markdown(prediction())
    assert "### sad (70%)" in text
    assert "missing: audio" in text and "vision 0.70, text 0.30" in text
    assert "| sad | 70.0% | +1.50 | +0.50 | +0.00 |" in text
    assert "clip image 100 ms" in text and "total 120 ms" in text


def test_served_files_are_named_by_content_and_bounded(tmp_path):
    first = write_result({"n": 1}, tmp_path)
    assert write_result({"n": 1}, tmp_path) == first, "the same result is the same file"
    assert json.loads(first.read_text(encoding="utf-8")) == {"n": 1}
    paths = [write_result({"n": i}, tmp_path) for i in range(2, 7)]
    for age, path in enumerate(reversed([first, *paths])):  # older files get older times
        os.utime(path, (1e9 - age, 1e9 - age))
    prune(tmp_path, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths[-3:]), "no .partial left either"


def test_view_of_a_real_clip_fills_every_output(tiny_model, tmp_path):
    clip = speech_clip(tmp_path / "clip.mp4", seconds=3)
    analyzer = Analyzer(tiny_model, whisper="none")
    result = analyzer.predict(clip, "happy, sad", options=AnalysisOptions(transcript="what a day"))
    analysis = analyzer.cached(result.clip_id)
    view = build_view(result, analysis, tmp_path / "served")
    assert [figure is not None for figure in view.stages] == [True, True, True]
    assert [f.axes[0].get_title(loc="left") for f in view.stages] == [
        s.name + ("" if s.trained else " (untrained)") for s in result.stages]
    assert [s.trained for s in result.stages] == [True, False, True], "audio's adapter is untrained"
    assert len(view.gallery) == 8 and view.gallery[0][1].endswith(" s")
    with Image.open(view.gallery[0][0]) as crop:
        assert crop.size == analysis.crops[0].shape[1::-1], "each gallery file is its crop"
    assert len(set(tmp_path.joinpath("served").iterdir())) <= 1 + 8
    assert [w for w, _ in view.transcript] == ["what ", "a ", "day "]
    assert view.result["clip_id"] == view.clip_id == result.clip_id


def test_labels_and_words_that_look_like_tex_are_drawn_as_typed():
    """A visitor's "$\\frac{...$" would make matplotlib's TeX parser fail at drawing time."""
    import io

    labels = ["$\\frac{sad$", "<b>😀</b>", "$x$"]
    words = ["costs", "$\\bad{", "$5"]
    stages = [StageAttention("stage 1: text", "text", words, np.full((3, 3), 1 / 3))]
    transcript = {"text": " ".join(words), "source": "override",
                  "words": [{"word": w, "start": None, "end": None} for w in words]}
    result = prediction(labels=labels, stages=stages, transcript=transcript)
    bars, heatmap = similarity_bars(result), stage_heatmap(stages[0], labels)
    for figure in (bars, heatmap, frame_timeline(result)):
        figure.savefig(io.BytesIO(), format="png")  # drawing is where a bad formula fails
    assert sorted(t.get_text() for t in bars.axes[0].get_yticklabels()) == sorted(labels)
    assert [t.get_text() for t in heatmap.axes[0].get_xticklabels()] == words


def test_visitors_markup_in_labels_and_warnings_is_shown_as_text():
    labels = ["<script>alert(1)</script>", "[x](javascript:alert(1))", "*bold*"]
    result = prediction(labels=labels, warnings=["duplicate label '<img src=x onerror=alert(1)>' was merged"])
    summary, warnings = summary_markdown(result), warnings_markdown(result.warnings)
    for text in (summary, warnings):
        assert "<script>" not in text and "<img" not in text and "](javascript" not in text
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in summary and "\\*bold\\*" in summary
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in warnings
