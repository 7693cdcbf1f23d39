"""The page's figures and views show the prediction's own numbers, row for row and column for column."""

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex, to_rgb
from matplotlib.text import Text
from PIL import Image

from demo.figures import frame_timeline, label_colours, segment_timeline, similarity_bars, stage_heatmaps
from demo.figures.attention_heatmaps import stage_heatmap
from demo.figures.label_similarity import weighted_cosine
from demo.figures.layout import OUTLINE, title_of
from demo.palette import COLOUR_NAMES, COLOURS, PALETTE, LabelColours, contrast
from demo.served_files import prune
from demo.views import build_view, shaded_transcript, summary_markdown, untrained_note, warnings_markdown, write_result
from merclip.head.result import Prediction, StageAttention
from merclip.limits import Limits
from merclip.media.sample_media import speech_clip
from merclip.reading.analyzer import AnalysisOptions, Analyzer
from merclip.reading.segment_reader import SegmentPrediction

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


def texts(axes, gid: str) -> list:
    return [t for t in axes.texts if t.get_gid() == gid]


def hex_of(rgba) -> str:
    return to_hex(rgba[:3] if len(rgba) == 4 else rgba)


def test_bars_are_sorted_each_in_its_labels_colour_the_winner_outlined_and_show_probability_and_cosine():
    axes = similarity_bars(prediction()).axes[0]
    names = texts(axes, "row-name")
    assert [t.get_text() for t in names] == ["angry", "happy", "sad"]  # bottom to top: the most probable on top
    assert [t.get_fontweight() for t in names] == ["normal", "normal", "bold"], "the winner's name is bold"
    widths = [bar.get_width() for bar in axes.patches]
    assert widths == pytest.approx([0.1, 0.2, 0.7])
    palette = LabelColours().of(LABELS)
    assert [hex_of(bar.get_facecolor()) for bar in axes.patches] == [palette[n].lower() for n in ["angry", "happy", "sad"]]
    assert [bar.get_linewidth() > 0 for bar in axes.patches] == [False, False, True], "the winner is outlined"
    assert hex_of(axes.patches[2].get_edgecolor()) == OUTLINE
    assert "70% · cos +0.265" in [t.get_text() for t in texts(axes, "value")]  # 0.7 * 0.25 + 0.3 * 0.30


def test_weighted_cosine_mixes_modalities_by_prior_weight():
    assert weighted_cosine(prediction()) == pytest.approx([0.7 * 0.2 + 0.3 * 0.1, 0.265, 0.7 * 0.18 + 0.3 * 0.05])


def test_an_untrained_stage_is_named_in_a_line_not_drawn(tmp_path):
    audio = StageAttention("stage 2: audio", "audio", [0.0, 0.05], np.array([[0.5, 0.5]] * 3), trained=False)
    text, vision = prediction().stages
    result = prediction(stages=[text, audio, vision], modalities=["text", "audio", "vision"], missing=[])
    assert "no training has changed the Voice stage" in untrained_note(result)
    assert untrained_note(prediction()) == ""
    view = build_view(result, None, tmp_path, crops=False)
    assert [f is not None for f in view.shown.stages] == [True, True, False], "two drawn stages, the third slot empty"
    assert ["Words" in title_of(f) for f in view.shown.stages[:2]] == [True, False]


def test_heatmap_rows_are_labels_and_columns_are_words_or_seconds_in_multiples_of_the_even_share():
    text, vision = prediction().stages
    figure = stage_heatmap(text, LABELS, top=1)
    axes = figure.axes[0]
    assert np.allclose(np.asarray(axes.images[0].get_array()), text.attention * 3), "1.0 = even attention"
    names = texts(axes, "row-name")
    assert [t.get_text() for t in names] == ["happy", "▶ sad", "angry"], "the winner's row is marked"
    assert [t.get_fontweight() for t in names] == ["normal", "bold", "normal"]
    swatches = [hex_of(c) for c in axes.collections[0].get_facecolors()]
    assert swatches == [LabelColours().of(LABELS)[label].lower() for label in LABELS], "each row's label colour beside it"
    assert [t.get_text() for t in texts(axes, "column-name")] == ["so", "sad", "today"]
    title = title_of(figure)
    assert title.startswith("Words stage") and "which words each label looked at" in title
    caption = [t.get_text() for t in figure.texts if t.get_gid() == "colour-caption"]
    assert caption == ["x even share (brighter = more)"], "the colour bar says how to read the colours"
    assert axes.images[0].get_clim() == (0.0, 3.0), "even attention (1.0) stays dark: the scale reaches 3x at least"
    assert figure.images[0].get_clim() == (0.0, 3.0), "the colour bar has the heatmap's scale"
    assert "sad looked most at the word 'sad', 2.4 times the even share" in figure.get_label()
    figure = stage_heatmap(vision, LABELS, top=0)
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["0.5", "1.5"]
    assert title_of(figure).startswith("Face stage")


def test_long_stages_keep_every_word_readable_and_time_pooled():
    attention = np.random.default_rng(0).random((3, 400))
    attention /= attention.sum(axis=1, keepdims=True)
    audio = StageAttention("stage 2: audio", "audio", [i / 20 for i in range(400)], attention)
    axes = stage_heatmap(audio, LABELS, top=0).axes[0]
    pooled = np.asarray(axes.images[0].get_array())
    sizes = np.diff(np.linspace(0, 400, 49).round())
    assert pooled.shape == (3, 48) and np.allclose((pooled * sizes).sum(axis=1), 400), "time pooled, shares kept"
    ticks = [t.get_text() for t in axes.get_xticklabels()]
    assert len(ticks) <= 8 and ticks[0] == "0.0"
    words = [f"w{i}" for i in range(130)]
    long_text = StageAttention("stage 1: text", "text", words, np.full((3, 130), 1 / 130))
    figure = stage_heatmap(long_text, LABELS, top=2)
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.texts] == words, "every word is written, none skipped"
    assert np.asarray(axes.images[0].get_array()).shape == (22, 6), "the top label's row, 6 words a line"
    assert "the top label 'angry' only" in title_of(figure)
    assert hex_of(axes.spines["left"].get_edgecolor()) == LabelColours().of(LABELS)["angry"].lower()
    many = StageAttention("stage 1: text", "text", [f"w{i}" for i in range(5000)], np.full((3, 5000), 1 / 5000))
    figure = stage_heatmap(many, LABELS, top=0)
    assert len(figure.axes[0].texts) == 300 and "the first 300 of 5000 words" in figure.axes[0].get_xlabel()
    assert figure.get_size_inches()[1] < 16, "a long transcript cannot make a figure too big to draw"


@pytest.mark.parametrize("count", [7, 14, 64])
def test_timeline_draws_each_label_in_its_colour_and_names_the_top_ones_inside_the_figure(count):
    import io

    rng = np.random.default_rng(count)
    labels = [f"label number {i}" for i in range(count)]
    probs = rng.dirichlet(np.ones(count)).tolist()
    result = prediction(labels=labels, probs=probs, frame_times=[0.5, 1.0, 1.5],
                        frame_similarity=rng.normal(0.2, 0.02, (count, 3)))
    colours = label_colours(result)
    figure = frame_timeline(result, colours)
    axes = figure.axes[0]
    assert len(axes.lines) == count
    assert {line.get_label(): line.get_color() for line in axes.lines} == colours, "each line in its label's colour"
    assert len({line.get_color() for line in axes.lines}) == count, "every label its own colour, however many"
    ranked = [labels[i] for i in np.argsort(probs)[::-1]]
    widths = {line.get_label(): line.get_linewidth() for line in axes.lines}
    assert widths[ranked[0]] > max(w for label, w in widths.items() if label != ranked[0]), "the winner's is thickest"
    names = texts(axes, "line-name")
    assert sorted(t.get_text() for t in names) == sorted(ranked[:3]), "the top three named at their line's end"
    assert [t.get_text() for t in names if t.get_fontweight() == "bold"] == [ranked[0]]
    assert title_of(figure).startswith("Face only")
    assert f"the other {count - 3} labels" in axes.get_xlabel()
    figure.savefig(io.BytesIO(), format="png")
    inside = figure.bbox.padded(1)
    for text in names:
        box = text.get_window_extent()
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1, f"'{text.get_text()}' is cut off"
    assert frame_timeline(prediction(frame_similarity=None, frame_times=[])) is None


def test_end_of_line_names_are_spread_so_they_never_overlap():
    import io

    labels = ["excited", "nervous", "calm"]
    result = prediction(labels=labels, probs=[0.4, 0.35, 0.25], frame_times=[0.5, 1.5],
                        frame_similarity=np.array([[0.2, 0.25], [0.21, 0.2501], [0.1, 0.2502]]))
    figure = frame_timeline(result)
    figure.savefig(io.BytesIO(), format="png")
    boxes = [t.get_window_extent() for t in texts(figure.axes[0], "line-name")]
    assert len(boxes) == 3
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), "names printed over each other"


def test_every_figure_describes_itself_for_screen_readers():
    from demo.described_plot import DescribedPlot

    result = prediction()
    plot = DescribedPlot()
    assert plot.get_block_name() == "plot", "drawn by Gradio's own plot front end"
    for figure, starts in ((similarity_bars(result), "Label probabilities: sad 70%, happy 20%, angry 10%. Colours: "
                                                     "sad = orange, happy = blue, angry = green. Bar"),
                           (stage_heatmap(result.stages[0], LABELS, 1), "Words stage attention"),
                           (frame_timeline(result), "Face similarity over time: sad from +0.24 to +0.26"),
                           (segment_timeline(PARTS, LABELS, selected=1), "Utterances over time: 0.0-2.0 s happy")):
        data = plot.postprocess(figure)
        assert data.chart.startswith(starts)
        assert data.plot.startswith("data:image/png;base64,"), "encoded losslessly"
    assert plot.postprocess(None) is None


def test_transcript_is_shaded_by_the_top_labels_text_attention():
    assert shaded_transcript(prediction()) == [("so ", 0.125), ("sad ", 1.0), ("today ", 0.125)]
    assert shaded_transcript(prediction(transcript=None)) == [("so ", 0.125), ("sad ", 1.0), ("today ", 0.125)], \
        "an utterance (no transcript of its own) shows its text stage's words"
    assert shaded_transcript(prediction(transcript=None, modalities=["vision"], stages=prediction().stages[1:])) == []


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
    result = analyzer.score(clip, "happy, sad", options=AnalysisOptions(transcript="what a day"))
    analysis = analyzer.cached(result.clip_id)
    view = build_view(result, analysis, tmp_path / "served")
    assert [s.trained for s in result.stages] == [True, False, True], "audio's adapter is untrained"
    assert [figure is not None for figure in view.shown.stages] == [True, True, False], "the untrained stage is not drawn"
    assert [title_of(f).split()[0] for f in view.shown.stages[:2]] == ["Words", "Face"]
    assert "Voice stage" in view.shown.untrained
    assert len(view.gallery) == 8 and view.gallery[0][1].endswith(" s")
    whole = build_view(result, replace(analysis, face_detection=False, faces=[None] * 8), tmp_path / "served")
    assert all(caption.endswith("face detection off: whole frame") for _, caption in whole.gallery)
    with Image.open(view.gallery[0][0]) as crop:
        assert crop.size == analysis.crops[0].shape[1::-1], "each gallery file is its crop"
    assert len(set(tmp_path.joinpath("served").iterdir())) <= 2 + 8, "the result, the figures image and the crops"
    assert [w for w, _ in view.shown.transcript] == ["what ", "a ", "day "]
    assert Path(view.download).name.startswith("clip-merclip-"), "the download is named after the clip"
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
    assert sorted(t.get_text() for t in texts(bars.axes[0], "row-name")) == sorted(labels)
    assert [t.get_text() for t in texts(heatmap.axes[0], "column-name")] == words
    assert texts(heatmap.axes[0], "row-name")[0].get_text() == "▶ $\\frac{sad$"


def test_visitors_markup_in_labels_and_warnings_is_shown_as_text():
    labels = ["<script>alert(1)</script>", "[x](javascript:alert(1))", "*bold*"]
    result = prediction(labels=labels, warnings=["duplicate label '<img src=x onerror=alert(1)>' was merged"])
    summary, warnings = summary_markdown(result), warnings_markdown(result.warnings)
    for text in (summary, warnings):
        assert "<script>" not in text and "<img" not in text and "](javascript" not in text
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in summary and "\\*bold\\*" in summary
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in warnings


def drawn_texts(figure) -> list[Text]:
    """Every piece of text the figure draws: titles, axis labels, tick labels, texts, legends."""
    found = [t for t in figure.texts]
    for axes in figure.axes:
        found += [axes.title, axes._left_title, axes._right_title, axes.xaxis.label, axes.yaxis.label, *axes.texts]
        found += [t for axis in (axes.xaxis, axes.yaxis) if axis.get_visible() for t in axis.get_ticklabels()]
    return [t for t in found if t.get_visible() and t.get_text().strip()]


def check_layout(figure) -> None:
    """Every text inside the figure, none over another; the figure 500 px wide."""
    import io

    figure.savefig(io.BytesIO(), format="png")
    assert figure.bbox.width == 500
    inside = figure.bbox.padded(-1)
    drawn = drawn_texts(figure)
    boxes = [t.get_window_extent() for t in drawn]
    for text, box in zip(drawn, boxes):
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, \
            f"cut off: {text.get_text()!r} at {box} in {figure.bbox}"
    for i, (a, box_a) in enumerate(zip(drawn, boxes)):
        for b, box_b in zip(drawn[i + 1:], boxes[i + 1:]):
            overlap = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0), min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            assert min(overlap) <= 0.5, f"{a.get_text()!r} collides with {b.get_text()!r}"


def scene(count: int, words: int, seed: int = 1):
    """A prediction with `count` labels named like the review's, a transcript of `words` words, and three utterances."""
    rng = np.random.default_rng(seed)
    base = ["happy", "sad", "angry", "surprised", "fearful", "disgusted", "contemptuous", "excited", "nervous",
            "negative", "positive", "neutral"]
    labels = base[:count] if count <= len(base) else [f"feeling number {i}" for i in range(count)]
    vocabulary = ["I", "just", "heard", "the", "most", "wonderful.", "news", "of", "my", "whole", "life",
                  "unbelievably", "extraordinary", "congratulations!"]
    transcript = [vocabulary[i % len(vocabulary)] for i in range(words)]
    stages = [StageAttention("stage 1: text", "text", transcript, rng.dirichlet(np.ones(words), count)),
              StageAttention("stage 3: vision", "vision", [0.4 * i for i in range(8)], rng.dirichlet(np.ones(8), count))]
    probs = rng.dirichlet(np.ones(count))
    probs[count - 1 if count < 40 else 43] += 1.0  # "feeling number 43" wins with 64 labels
    probs = (probs / probs.sum()).tolist()
    result = prediction(labels=labels, probs=probs, logits=probs, stages=stages,
                        cosines={"vision": rng.normal(0.2, 0.01, count).tolist(),
                                 "text": rng.normal(0.2, 0.01, count).tolist()},
                        frame_times=[0.5, 1.5, 2.5, 3.5], frame_similarity=rng.normal(0.2, 0.01, (count, 4)))
    parts = [SegmentPrediction(0.0, 1.0, "I just heard", replace(result, probs=probs[::-1], sentiment=0.5)),
             SegmentPrediction(1.2, 3.0, " ".join(transcript[3:12]), replace(result, sentiment=-0.25)),
             SegmentPrediction(3.0, 3.3, "ok", replace(result, probs=np.roll(probs, 1).tolist(), sentiment=0.1)),
             SegmentPrediction(3.3, 4.0, "and it was great", replace(result, probs=np.roll(probs, 2).tolist(),
                                                                   sentiment=0.9))]
    return result, parts


@pytest.mark.parametrize("count,words", [(7, 10), (7, 28), (14, 28), (64, 28), (7, 300), (64, 300)])
def test_no_text_is_cut_or_collides_in_any_figure(count, words):
    """A phone shrinks a figure, it does not re-layout it: every tick label, title, caption, name and
    word must be inside the figure and clear of every other (the review saw "wonderful." run into the
    colour bar, its caption lose its "x", "excited" print over "nervous")."""
    result, parts = scene(count, words)
    colours = label_colours(result)
    figures = [similarity_bars(result, colours), frame_timeline(result, colours), *stage_heatmaps(result, colours),
               segment_timeline(parts, result.labels, colours, selected=2),
               segment_timeline([replace(p, prediction=replace(p.prediction, sentiment=None)) for p in parts],
                                result.labels, colours)]
    for figure in figures:
        check_layout(figure)
    wide = [t for t in figure_texts_of(figures[2]) if t.get_gid() is None and "…" in t.get_text()]
    assert all(len(t.get_text()) >= 2 for t in wide)


def figure_texts_of(figure) -> list[Text]:
    return [t for axes in figure.axes for t in axes.texts]


def test_a_long_winning_label_is_never_cut_in_a_title():
    result, _ = scene(64, 28)
    assert result.top_label == "feeling number 43"
    assert "feeling number 43" in title_of(similarity_bars(result)).replace("\n", " ")
    long = "a person who has just heard the most unbelievably wonderful news of their whole life"
    title = title_of(similarity_bars(prediction(labels=["calm", long, "sad"])))
    assert title.replace("\n", " ") == f"Which label fits best: {long}", "wrapped, every character kept"
    check_layout(similarity_bars(prediction(labels=["calm", long, "sad"])))


def test_stage_heatmaps_of_one_prediction_have_the_same_height():
    for count, words in [(7, 10), (7, 28), (64, 300)]:
        result, _ = scene(count, words)
        heights = {round(float(f.get_size_inches()[1]), 6) for f in stage_heatmaps(result)}
        assert len(heights) == 1, f"{count} labels, {words} words: heights {heights}"


def test_a_label_has_the_same_colour_in_every_figure():
    result, parts = scene(7, 10)
    colours = label_colours(result)
    bars = similarity_bars(result, colours).axes[0]
    from_bars = {t.get_text(): hex_of(bar.get_facecolor())
                 for t, bar in zip(texts(bars, "row-name"), bars.patches)}
    from_lines = {line.get_label(): to_hex(line.get_color()) for line in frame_timeline(result, colours).axes[0].lines}
    heatmap = stage_heatmaps(result, colours)[1].axes[0]
    from_rows = {t.get_text().removeprefix("▶ "): hex_of(c)
                 for t, c in zip(texts(heatmap, "row-name"), heatmap.collections[0].get_facecolors())}
    spans = segment_timeline(parts, result.labels, colours).axes[0].collections
    from_spans = {span.get_gid(): hex_of(span.get_facecolor()[0]) for span in spans}
    expected = {label: colour.lower() for label, colour in colours.items()}
    assert from_bars == from_lines == from_rows == expected
    assert from_spans == {label: expected[label] for label in from_spans} and len(from_spans) >= 2
    assert len(set(expected.values())) == 7, "no two labels share a colour"
    default = {t.get_text(): hex_of(bar.get_facecolor()) for t, bar in
               zip(texts(similarity_bars(result).axes[0], "row-name"), similarity_bars(result).axes[0].patches)}
    assert default == {label: c.lower() for label, c in LabelColours().of(result.labels).items()}, \
        "without colours, a figure takes the palette's, in the labels' order"


def test_the_winner_has_no_colour_of_its_own():
    """Red meant "the winner" in the bars only: now the winner is outlined and bold, in its label's colour."""
    for probs in ([0.7, 0.2, 0.1], [0.1, 0.2, 0.7]):
        axes = similarity_bars(prediction(probs=probs)).axes[0]
        faces = [hex_of(bar.get_facecolor()) for bar in axes.patches]
        winner = faces[-1]
        assert winner in {c.lower() for c in PALETTE} and faces.count(winner) == 1
        assert winner == LabelColours().of(LABELS)[LABELS[int(np.argmax(probs))]].lower()


def test_the_selected_utterance_is_outlined_and_the_others_faded():
    result, parts = scene(7, 10)
    for selected in (1, 3):
        spans = segment_timeline(parts, result.labels, selected=selected).axes[0].collections
        widths = [span.get_linewidth()[0] for span in spans]
        assert widths.index(max(widths)) == selected - 1 and sorted(widths)[-2] < max(widths)
        assert hex_of(spans[selected - 1].get_edgecolor()[0]) == OUTLINE
        assert [span.get_alpha() for span in spans].count(1.0) == 1
    plain = segment_timeline(parts, result.labels).axes[0].collections
    assert all(hex_of(span.get_edgecolor()[0]) != OUTLINE for span in plain), "no utterance outlined when none chosen"
    figure = segment_timeline(parts, result.labels, selected=2)
    assert "utterance 2 outlined" in title_of(figure).replace("\n", " ")


def test_the_palette_keeps_each_labels_colour_across_label_sets():
    palette = LabelColours()
    first = palette.of(["happy", "sad", "angry"])
    assert len(set(first.values())) == 3 and set(first.values()) <= set(PALETTE)
    second = palette.of(["sad", "calm", "happy", "angry"])
    assert {label: second[label] for label in first} == first, "a label keeps its colour in a new set"
    assert second["calm"] not in first.values()
    third = palette.of(["calm", "bored"])
    assert third["calm"] == second["calm"] and third["bored"] not in second.values(), \
        "a new label takes a colour nobody used lately, not one a label just had"
    assert palette.of(["happy"])["happy"] == first["happy"], "remembered after being left out"


def test_the_palette_never_gives_two_labels_of_a_set_one_colour():
    palette = LabelColours()
    rng = np.random.default_rng(0)
    names = [f"label {i}" for i in range(40)]
    for _ in range(200):
        labels = list(rng.choice(names, size=int(rng.integers(1, 13)), replace=False))
        colours = palette.of(labels)
        assert len(set(colours.values())) == len(labels), labels
        assert set(colours.values()) <= set(COLOURS[:40]), "40 labels seen: 40 colours handed out"
    many = palette.of(names[:20])
    assert len(set(many.values())) == 20 and set(many.values()) <= set(COLOURS), "past 12 labels, more colours"


def test_the_palette_survives_a_deep_copy_and_threads():
    import copy
    import threading

    palette = LabelColours()
    colours = palette.of(["happy", "sad"])
    twin = copy.deepcopy(palette)  # gr.State copies its initial value for each session
    assert twin.of(["sad", "happy"]) == colours
    results = []
    threads = [threading.Thread(target=lambda: results.append(twin.of([f"x{i}" for i in range(12)]))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(set(r.values())) == 12 for r in results)


def linear(colour):
    c = np.array(to_rgb(colour))
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(rgb):
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ np.clip(rgb, 0, 1)
    f = np.cbrt(np.maximum(xyz / np.array([0.95047, 1.0, 1.08883]), 0.008856))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


EYES = [np.eye(3), np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                             [-0.011820, 0.042940, 0.968881]]),
        np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                  [-0.003882, -0.048116, 1.051998]])]  # normal, deuteranope, protanope (Machado et al. 2009)


def test_the_palettes_colours_stay_apart_for_colour_blind_eyes_too():
    """CIELAB distance >= 13 between any two colours, as seen with normal vision, deuteranopia and
    protanopia (Machado et al. 2009), and none of them grey."""
    colours = [*PALETTE, "#c4c4c4"]  # the grey a label without a colour had
    assert len(PALETTE) == 12
    for view in EYES:
        points = [lab(view @ linear(c)) for c in colours]
        for i in range(len(points)):
            for j in range(i + 1, len(points)):
                assert np.linalg.norm(points[i] - points[j]) >= 13, (colours[i], colours[j])


PARTS = [SegmentPrediction(0.0, 2.0, "I got the job", prediction(probs=[0.7, 0.2, 0.1], sentiment=0.8)),
         SegmentPrediction(2.5, 5.0, "then it rained all day long", prediction(probs=[0.1, 0.8, 0.1], sentiment=-0.6)),
         SegmentPrediction(5.0, 9.0, "and I laughed", prediction(probs=[0.6, 0.3, 0.1], sentiment=0.4))]


def test_utterances_are_spans_coloured_by_their_top_label_with_a_sentiment_curve_when_anchored():
    figure = segment_timeline(PARTS, LABELS)
    axes = figure.axes[0]
    spans = axes.collections
    assert len(spans) == 3
    assert spans[0].get_facecolor().tolist() == spans[2].get_facecolor().tolist() != spans[1].get_facecolor().tolist()
    assert hex_of(spans[0].get_facecolor()[0]) == LabelColours().of(LABELS)["happy"].lower()
    legend = [t.get_text() for t in figure.texts[1:]]
    assert legend == ["happy", "sad"]
    assert [t.get_text() for t in axes.texts[::2]][:1] == ["1"] and "I got the job" in [t.get_text() for t in axes.texts]
    curve = figure.axes[1].lines[0]
    assert list(curve.get_ydata()) == [0.8, -0.6, 0.4] and list(curve.get_xdata()) == [1.0, 3.75, 7.0]
    unanchored = segment_timeline([SegmentPrediction(0.0, 4.0, "", prediction())], LABELS)
    assert len(unanchored.axes) == 1 and "1 window, coloured" in title_of(unanchored)
    assert segment_timeline([], LABELS) is None


def test_choosing_an_utterance_makes_every_panel_describe_it(tmp_path):
    """A selection is a state of the whole page: heading, bars, stages, words, headline and table are the
    utterance's, the timeline marks it, and the colours stay the visitor's; 0 is the whole clip again."""
    whole, palette = prediction(), LabelColours()
    chosen = build_view(whole, None, tmp_path, crops=False, parts=PARTS, selected=2, colours=palette)
    part = PARTS[1].prediction
    assert chosen.shown.heading.startswith(f"**Showing utterance 2 of {len(PARTS)} (2.5-5.0 s)**")
    assert chosen.shown.bars.get_label().startswith(f"Label probabilities: {part.top_label}")
    assert chosen.shown.summary.startswith(f"### {part.top_label} ({max(part.probs):.0%})")
    assert "utterance 2 shown" in chosen.shown.segments.get_label()
    assert chosen.segment_choice.startswith("2 · ") and chosen.result["labels"] == whole.labels, "the JSON is the clip's"
    again = build_view(whole, None, tmp_path, crops=False, parts=PARTS, selected=0, colours=palette)
    assert again.shown.heading.startswith("**Showing the whole clip**") and again.segment_choice == "Whole clip"
    assert again.shown.summary.startswith(f"### {whole.top_label}")
    def key(figure):
        return dict(pair.split(" = ") for pair in figure.get_label().split("Colours: ")[1][:-len(". Bar")].split(", "))

    assert key(again.shown.bars) == key(chosen.shown.bars), "a label keeps its colour"


# --- issue 35: colours for a whole visit, the chosen part's crops and face chart, small figure texts -------------

def bar_colours(figure) -> dict[str, str]:
    axes = figure.axes[0]
    return {t.get_text(): hex_of(bar.get_facecolor()) for t, bar in zip(texts(axes, "row-name"), axes.patches)}


def is_grey(colour: str) -> bool:
    r, g, b = to_rgb(colour)
    return max(r, g, b) - min(r, g, b) < 0.12


def test_a_label_keeps_its_colour_for_the_whole_visit_and_none_is_grey_past_twelve_labels():
    """The review's visit: Ekman's seven, then 14 labels with 'neutral' and 'rage' (where 'neutral' took the
    green 'angry' had and 'rage' took 'happy''s blue), then 64 labels (where 'happy' turned grey)."""
    ekman = ["happy", "sad", "angry", "surprised", "fearful", "disgusted", "contemptuous"]
    fourteen = ["neutral", "rage", "calm", "bored", "proud", "tense", "relieved", "curious", "shy", "jealous",
                "hopeful", "sad", "happy", "angry"]
    sixty_four = [f"feeling {i}" for i in range(61)] + ["happy", "neutral", "rage"]
    palette, first_colour, holder = LabelColours(), {}, {}
    rng = np.random.default_rng(3)
    for labels in (ekman, fourteen, ekman, sixty_four, fourteen):
        probs = np.sort(rng.dirichlet(np.ones(len(labels))))  # the labels met first rank lowest
        result = prediction(labels=labels, probs=probs.tolist(), logits=probs.tolist(), stages=[], prior_weights={},
                            cosines={}, frame_similarity=None, frame_times=[])
        shown = bar_colours(similarity_bars(result, label_colours(result, palette=palette)))
        assert set(shown) == set(labels) and len(set(shown.values())) == len(labels), "one colour per label"
        for label, colour in shown.items():
            assert not is_grey(colour), f"{label} is grey among {len(labels)} labels"
            assert first_colour.setdefault(label, colour) == colour, f"{label} changed colour"
            assert holder.setdefault(colour, label) == label, f"{label} took {holder.get(colour)}'s colour"


def test_colours_past_twelve_stay_apart_and_text_on_and_in_them_reads():
    """A set of 64 gets 64 colours as far apart as they go (worst of normal, deuteranope and protanope
    eyes), each with a name of its own for the alt texts; the names at the face chart's line ends and
    the numbers on the utterance spans keep 4.5:1 contrast whatever the colour."""
    points = np.array([[lab(eye @ linear(c)) for c in COLOURS[:64]] for eye in EYES])
    distance = np.linalg.norm(points[:, :, None] - points[:, None], axis=3).min(axis=0) + np.eye(64) * 1e9
    assert len(COLOURS) >= 64 and distance.min() >= 7, f"the closest two of 64 colours: {distance.min():.1f} apart"
    assert all(np.hypot(a, b) >= 25 for _, a, b in points[0]), "none of them nearly grey"
    assert len(set(COLOUR_NAMES.values())) == len(COLOURS) == len(COLOUR_NAMES), "each colour its own name"
    labels = [f"feeling {i}" for i in range(64)]
    for shift in range(0, 64, 3):  # each colour in turn among the three named lines
        probs = np.roll(np.linspace(1, 2, 64), shift)
        result = prediction(labels=labels, probs=(probs / probs.sum()).tolist(), frame_times=[0.5, 1.5],
                            frame_similarity=np.random.default_rng(shift).normal(0.2, 0.02, (64, 2)))
        for name in texts(frame_timeline(result).axes[0], "line-name"):
            assert contrast(to_hex(name.get_color()), "#ffffff") >= 4.5, name.get_text()
    palette = LabelColours()
    for first in range(0, 64, 8):  # eight spans a figure, wide enough for their numbers
        parts = [SegmentPrediction(i - first, i - first + 1.0, "", prediction(labels=labels, probs=np.eye(64)[i].tolist()))
                 for i in range(first, first + 8)]
        spans = segment_timeline(parts, labels, palette.of(labels)).axes[0]
        numbers = [t for t in spans.texts if t.get_text().isdigit()]
        assert len(numbers) == 8
        for number, span in zip(numbers, spans.collections):
            assert contrast(to_hex(number.get_color()), hex_of(span.get_facecolor()[0])) >= 4.5, number.get_text()


def test_zero_never_reads_minus_zero_and_every_tick_keeps_its_sign():
    import re

    positive = [replace(p, prediction=replace(p.prediction, sentiment=abs(p.prediction.sentiment))) for p in PARTS]
    result = prediction(frame_similarity=np.array([[-0.012, 0.012], [-0.004, 0.006], [0.0, -0.01]]))
    for figure in (segment_timeline(positive, LABELS), frame_timeline(result)):
        figure.savefig(__import__("io").BytesIO(), format="png")
        for axes in figure.axes:
            for tick, text in zip(axes.get_yticks(), axes.get_yticklabels()):
                shown = text.get_text().replace("−", "-")
                if not shown:
                    continue
                assert not re.fullmatch(r"-0(\.0*)?", shown), f"'{shown}' in {title_of(figure)!r}"
                assert float(shown) == pytest.approx(tick, abs=1e-9), f"'{shown}' for a tick at {tick}"


def test_the_face_chart_says_the_other_label_in_the_singular():
    labels = ["happy", "sad", "angry", "calm"]
    result = prediction(labels=labels, probs=[0.4, 0.3, 0.2, 0.1], frame_similarity=np.full((4, 2), 0.2))
    assert frame_timeline(result).axes[0].get_xlabel().endswith("thin lines: the other label")
    assert frame_timeline(prediction(labels=labels + ["bored"], probs=[0.3, 0.3, 0.2, 0.1, 0.1],
                                     frame_similarity=np.full((5, 2), 0.2))).axes[0].get_xlabel().endswith(
        "thin lines: the other 2 labels")


def test_even_attention_reads_even_in_every_pooled_column_and_the_title_says_what_a_column_is():
    for count in (49, 70, 400):
        audio = StageAttention("stage 2: audio", "audio", [i / 20 for i in range(count)], np.full((3, count), 1 / count))
        figure = stage_heatmap(audio, LABELS, top=0)
        shown = np.asarray(figure.axes[0].images[0].get_array())
        assert shown.shape == (3, 48) and np.allclose(shown, 1.0), f"{count} frames: {shown.min():.2f}-{shown.max():.2f}"
        sizes = np.diff(np.linspace(0, count, 49).round()).astype(int)
        said = f"{sizes.min()}-{sizes.max()}" if sizes.min() != sizes.max() else f"{sizes.min()}"
        assert f"each column the mean of {said} frames" in title_of(figure).replace("\n", " ")
    short = StageAttention("stage 2: audio", "audio", [0.1, 0.2], np.full((3, 2), 0.5))
    assert "each column" not in title_of(stage_heatmap(short, LABELS, top=0)), "nothing pooled, nothing said"


def test_close_probabilities_are_shown_with_the_decimals_that_rank_them():
    """64 labels near 1.6% each all read "2%"; the bars are sorted, and their numbers must say why."""
    probs = np.random.default_rng(5).dirichlet(np.ones(64) * 50)
    result = prediction(labels=[f"feeling {i}" for i in range(64)], probs=probs.tolist(), logits=probs.tolist(),
                        cosines={"vision": [0.2] * 64, "text": [0.2] * 64})
    figure = similarity_bars(result)
    shown = [t.get_text().split(" · ")[0] for t in texts(figure.axes[0], "value")]
    assert len(set(shown)) == len({round(p, 4) for p in probs}), f"ties where the values differ: {shown}"
    assert [float(s.rstrip("%")) for s in shown] == sorted(float(s.rstrip("%")) for s in shown)
    assert f"{result.top_label} {max(probs):.2%}" in figure.get_label(), "the alt text says the same numbers"
    assert [t.get_text().split(" · ")[0] for t in texts(similarity_bars(prediction()).axes[0], "value")] == \
        ["10%", "20%", "70%"], "numbers far apart keep no decimals"


def test_the_figures_image_holds_every_figure_shown_one_under_the_other(tmp_path):
    from demo.figures import drawn
    from demo.figures.image import FIGURE_GAP

    view = build_view(prediction(), None, tmp_path, crops=False, parts=PARTS, selected=2, colours=LabelColours())
    figures = [view.shown.bars, view.shown.segments, *[f for f in view.shown.stages if f is not None], view.timeline]
    with Image.open(view.figures_image) as sheet:
        sheet = sheet.convert("RGB")
    assert Path(view.figures_image).name.startswith("clip-figures-") and sheet.width == 500
    images = [drawn(figure) for figure in figures]
    top = sheet.height - sum(i.height + FIGURE_GAP for i in images)  # a caption line above them
    assert 0 < top < 60
    for figure, image in zip(figures, images):
        top += FIGURE_GAP
        part = sheet.crop((0, top, image.width, top + image.height))
        assert np.array_equal(np.asarray(part), np.asarray(image)), f"{title_of(figure)!r} is in the image as shown"
        top += image.height


def test_a_chosen_part_has_its_own_crops_and_face_chart_and_says_so(tiny_model, tmp_path):
    from merclip.reading.segment_reader import SegmentReader
    from merclip.reading.segments import SegmentMode

    clip = speech_clip(tmp_path / "clip.mp4", seconds=6)
    reader = SegmentReader(Analyzer(tiny_model, whisper="none"))
    whole, parts = reader.read(clip, "happy, sad", SegmentMode("window", 1.0), frame_cap=4,  # as the page: no more
                                  options=AnalysisOptions(Limits(frames=4), transcript="what a day"))
    analysis, frames = reader.analyzer.cached(whole.clip_id), reader.sampled_frames(whole.clip_id)
    assert len(parts) == 6 and len(frames) > len(analysis.crops), "some windows had frames added"
    for selected, part in enumerate(parts, start=1):
        view = build_view(whole, analysis, tmp_path / "served", parts=parts, selected=selected, frames=frames)
        span = f"window {selected} ({part.start:.1f}-{part.end:.1f} s)"
        assert view.gallery_label == f"Face crops in {span}"
        times = [float(caption.split(" s")[0]) for _, caption in view.gallery]
        assert times and all(part.start - 0.05 <= t <= part.end + 0.05 for t in times), (span, times)
        assert times == [round(t, 1) for t in part.prediction.frame_times], "the crops are the face chart's frames"
        assert title_of(view.timeline).startswith(f"Face only in {span}")
        check_layout(view.timeline)
        assert view.timeline.get_label().startswith(f"Face similarity over time in {span}: "), "the alt text too"
        assert list(view.timeline.axes[0].lines[0].get_xdata()) == part.prediction.frame_times
    view = build_view(whole, analysis, tmp_path / "served", parts=parts, selected=0, frames=frames)
    assert view.gallery_label == "Sampled face crops" and len(view.gallery) == len(analysis.crops)
    assert [caption for _, caption in view.gallery] == [f"{t:.1f} s" for t in whole.frame_times], \
        "the whole clip's crops are its face chart's frames"
    assert title_of(view.timeline).startswith("Face only: ")
