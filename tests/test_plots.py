"""The page's figures and views show the prediction's own numbers, row for row and column for column."""

import json
import os
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from demo.plots import WINNER, frame_timeline, similarity_bars, stage_heatmap, weighted_cosine
from demo.served_files import prune
from demo.views import build_view, shaded_transcript, summary_markdown, untrained_note, warnings_markdown, write_result
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
    assert "70% · cos +0.265" in texts  # 0.7 * 0.25 + 0.3 * 0.30


def test_weighted_cosine_mixes_modalities_by_prior_weight():
    assert weighted_cosine(prediction()) == pytest.approx([0.7 * 0.2 + 0.3 * 0.1, 0.265, 0.7 * 0.18 + 0.3 * 0.05])


def test_an_untrained_stage_is_named_in_a_line_not_drawn(tmp_path):
    audio = StageAttention("stage 2: audio", "audio", [0.0, 0.05], np.array([[0.5, 0.5]] * 3), trained=False)
    text, vision = prediction().stages
    result = prediction(stages=[text, audio, vision], modalities=["text", "audio", "vision"], missing=[])
    assert "Voice stage reads through an adapter that is not trained" in untrained_note(result)
    assert untrained_note(prediction()) == ""
    view = build_view(result, None, tmp_path, crops=False)
    assert [f is not None for f in view.stages] == [True, True, False], "two drawn stages, the third slot empty"
    assert ["Words" in f.axes[0].get_title(loc="left") for f in view.stages[:2]] == [True, False]


def test_heatmap_rows_are_labels_and_columns_are_words_or_seconds_in_multiples_of_the_even_share():
    text, vision = prediction().stages
    figure = stage_heatmap(text, LABELS, top=1)
    axes = figure.axes[0]
    assert np.allclose(np.asarray(axes.images[0].get_array()), text.attention * 3), "1.0 = even attention"
    assert [t.get_text() for t in axes.get_yticklabels()] == ["happy", "▶ sad", "angry"], "the winner's row is marked"
    assert axes.get_yticklabels()[1].get_fontweight() == "bold"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["so", "sad", "today"]
    title = axes.get_title(loc="left")
    assert title.startswith("Words stage") and "which words each label looked at" in title
    assert "brighter = more" in figure.axes[1].get_ylabel(), "the colour bar says how to read the colours"
    assert axes.images[0].get_clim() == (0.0, 3.0), "even attention (1.0) stays dark: the scale reaches 3x at least"
    assert "sad looked most at the word 'sad', 2.4 times the even share" in figure.get_label()
    figure = stage_heatmap(vision, LABELS, top=0)
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0.5", "1.5"]
    assert figure.axes[0].get_title(loc="left").startswith("Face stage")
    assert len(figure.axes) == 2, "the heatmap has a colour bar"


def test_long_stages_keep_every_word_readable_and_time_pooled():
    attention = np.random.default_rng(0).random((3, 400))
    attention /= attention.sum(axis=1, keepdims=True)
    audio = StageAttention("stage 2: audio", "audio", [i / 20 for i in range(400)], attention)
    axes = stage_heatmap(audio, LABELS, top=0).axes[0]
    pooled = np.asarray(axes.images[0].get_array())
    assert pooled.shape == (3, 48) and np.allclose(pooled.sum(axis=1) / 48, 1.0), "time pooled, shares kept"
    ticks = [t.get_text() for t in axes.get_xticklabels()]
    assert len(ticks) <= 8 and ticks[0] == "0.0"
    words = [f"w{i}" for i in range(130)]
    long_text = StageAttention("stage 1: text", "text", words, np.full((3, 130), 1 / 130))
    axes = stage_heatmap(long_text, LABELS, top=2).axes[0]
    assert [t.get_text() for t in axes.texts] == words, "every word is written, none skipped"
    assert np.asarray(axes.images[0].get_array()).shape == (17, 8), "the top label's row, 8 words a line"
    assert "the top label 'angry' only" in axes.get_title(loc="left")
    many = StageAttention("stage 1: text", "text", [f"w{i}" for i in range(5000)], np.full((3, 5000), 1 / 5000))
    figure = stage_heatmap(many, LABELS, top=0)
    assert len(figure.axes[0].texts) == 320 and "the first 320 of 5000 words" in figure.axes[0].get_xlabel()
    assert figure.get_size_inches()[1] < 16, "a long transcript cannot make a figure too big to draw"


@pytest.mark.parametrize("count", [7, 14, 64])
def test_timeline_colours_the_top_labels_greys_the_rest_and_names_them_inside_the_figure(count):
    import io

    rng = np.random.default_rng(count)
    labels = [f"label number {i}" for i in range(count)]
    probs = rng.dirichlet(np.ones(count)).tolist()
    result = prediction(labels=labels, probs=probs, frame_times=[0.5, 1.0, 1.5],
                        frame_similarity=rng.normal(0.2, 0.02, (count, 3)))
    figure = frame_timeline(result)
    axes = figure.axes[0]
    assert len(axes.lines) == count
    coloured = [line for line in axes.lines if line.get_color() != "#b8b8b8"]
    assert len(coloured) == 3 and sum(line.get_color() == WINNER for line in coloured) == 1, "red is the winner's only"
    ranked = [labels[i] for i in np.argsort(probs)[::-1][:3]]
    assert sorted(t.get_text() for t in axes.texts) == sorted(ranked), "the top three named at their line's end"
    assert axes.get_title(loc="left").startswith("Face only")
    assert f"the other {count - 3} labels" in axes.get_xlabel()
    figure.savefig(io.BytesIO(), format="png")
    inside = figure.bbox.padded(1)
    for text in axes.texts:
        box = text.get_window_extent()
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1, f"'{text.get_text()}' is cut off"
    assert frame_timeline(prediction(frame_similarity=None, frame_times=[])) is None


def test_every_figure_describes_itself_for_screen_readers():
    from demo.described_plot import DescribedPlot

    result = prediction()
    plot = DescribedPlot()
    assert plot.get_block_name() == "plot", "drawn by Gradio's own plot front end"
    for figure, starts in ((similarity_bars(result), "Label probabilities: sad 70%, happy 20%, angry 10%. Bar"),
                           (stage_heatmap(result.stages[0], LABELS, 1), "Words stage attention"),
                           (frame_timeline(result), "Face similarity over time: sad from +0.24 to +0.26")):
        assert plot.postprocess(figure).chart.startswith(starts)


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
    assert [s.trained for s in result.stages] == [True, False, True], "audio's adapter is untrained"
    assert [figure is not None for figure in view.stages] == [True, True, False], "the untrained stage is not drawn"
    assert [f.axes[0].get_title(loc="left").split()[0] for f in view.stages[:2]] == ["Words", "Face"]
    assert "Voice stage" in view.untrained
    assert len(view.gallery) == 8 and view.gallery[0][1].endswith(" s")
    whole = build_view(result, replace(analysis, face_detection=False, faces=[None] * 8), tmp_path / "served")
    assert all(caption.endswith("face detection off: whole frame") for _, caption in whole.gallery)
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
    bars, heatmap = similarity_bars(result), stage_heatmap(stages[0], labels, 0)
    for figure in (bars, heatmap, frame_timeline(result)):
        figure.savefig(io.BytesIO(), format="png")  # drawing is where a bad formula fails
    assert sorted(t.get_text() for t in bars.axes[0].get_yticklabels()) == sorted(labels)
    assert [t.get_text() for t in heatmap.axes[0].get_xticklabels()] == words
    assert heatmap.axes[0].get_yticklabels()[0].get_text() == "▶ $\\frac{sad$"


def test_visitors_markup_in_labels_and_warnings_is_shown_as_text():
    labels = ["<script>alert(1)</script>", "[x](javascript:alert(1))", "*bold*"]
    result = prediction(labels=labels, warnings=["duplicate label '<img src=x onerror=alert(1)>' was merged"])
    summary, warnings = summary_markdown(result), warnings_markdown(result.warnings)
    for text in (summary, warnings):
        assert "<script>" not in text and "<img" not in text and "](javascript" not in text
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in summary and "\\*bold\\*" in summary
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in warnings


def test_titles_and_axis_labels_fit_inside_their_figures():
    """A figure's text cut at its right edge (a phone shows the figure at ~330 px: nothing can be cut)."""
    import io

    labels = ["happy", "sad", "angry", "surprised", "fearful", "disgusted", "contemptuous"]
    rng = np.random.default_rng(1)
    words = ["I", "just", "heard", "the", "best", "news", "of", "my", "whole", "life"]
    stages = [StageAttention("stage 1: text", "text", words, rng.dirichlet(np.ones(10), 7)),
              StageAttention("stage 3: vision", "vision", [0.4 * i for i in range(8)], rng.dirichlet(np.ones(8), 7))]
    result = prediction(labels=labels, probs=rng.dirichlet(np.ones(7)).tolist(), stages=stages,
                        cosines={"vision": rng.normal(0.2, 0.01, 7).tolist(), "text": rng.normal(0.2, 0.01, 7).tolist()},
                        frame_times=[0.5, 1.5], frame_similarity=rng.normal(0.2, 0.01, (7, 2)))
    figures = [similarity_bars(result), frame_timeline(result), *(stage_heatmap(s, labels, 2) for s in stages)]
    for figure in figures:
        figure.savefig(io.BytesIO(), format="png")
        inside = figure.bbox.padded(1)
        for axes in figure.axes:
            for text in (axes.title, axes._left_title, axes.xaxis.label):
                if text.get_text():
                    box = text.get_window_extent()
                    assert inside.x0 <= box.x0 and box.x1 <= inside.x1, f"cut off: {text.get_text()!r}"


def test_utterances_are_spans_coloured_by_their_top_label_with_a_sentiment_curve_when_anchored():
    from demo.plots import segment_timeline
    from merclip.segmented import SegmentPrediction

    parts = [SegmentPrediction(0.0, 2.0, "I got the job", prediction(probs=[0.7, 0.2, 0.1], sentiment=0.8)),
             SegmentPrediction(2.5, 5.0, "then it rained all day long", prediction(probs=[0.1, 0.8, 0.1], sentiment=-0.6)),
             SegmentPrediction(5.0, 9.0, "and I laughed", prediction(probs=[0.6, 0.3, 0.1], sentiment=0.4))]
    figure = segment_timeline(parts, LABELS)
    axes = figure.axes[0]
    spans = axes.collections
    assert len(spans) == 3
    assert spans[0].get_facecolor().tolist() == spans[2].get_facecolor().tolist() != spans[1].get_facecolor().tolist()
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["happy", "sad"]
    assert [t.get_text() for t in axes.texts[::2]][:1] == ["1"] and "I got the job" in [t.get_text() for t in axes.texts]
    curve = figure.axes[1].lines[0]
    assert list(curve.get_ydata()) == [0.8, -0.6, 0.4] and list(curve.get_xdata()) == [1.0, 3.75, 7.0]
    unanchored = segment_timeline([SegmentPrediction(0.0, 4.0, "", prediction())], LABELS)
    assert len(unanchored.axes) == 1 and "1 window, coloured" in unanchored.axes[0].get_title(loc="left")
    assert segment_timeline([], LABELS) is None
