"""Live mode's scorer: frame by frame equal to the clip path, smoothing in time, dropping, labels mid-stream,
the microphone's words, the last seconds kept for a full analysis, several visitors at once."""

import re
import threading

import numpy as np
import pytest
from PIL import Image

from merclip.errors import LabelError
from merclip.limits import Limits
from merclip.media.sample_media import face_frames, recordings
from merclip.reading.analyzer import AnalysisOptions, Analyzer
from merclip.reading.live import LiveSession, Smoother

LABELS = "happy, sad, angry, surprised, fearful, disgusted, neutral"


@pytest.fixture
def analyzer(tiny_model):
    return Analyzer(tiny_model, whisper="bundled")


def _clip_path(analyzer, frame, tmp_path, name, labels=LABELS):
    """The same frame analysed as a file, the whole way: decode, face, crop, CLIP, scoring."""
    path = tmp_path / f"{name}.png"
    Image.fromarray(frame).save(path)
    return analyzer.score(path, labels, options=AnalysisOptions(limits=Limits(frames=1)))


def _clip_path_probs(analyzer, frame, tmp_path, name):
    return np.array(_clip_path(analyzer, frame, tmp_path, name).probs)


def test_each_live_frame_scores_as_the_clip_path_on_that_frame(analyzer, tmp_path):
    session = LiveSession(analyzer, LABELS)
    for i, frame in enumerate(face_frames(3)):
        reading = session.offer(frame, at=0.2 * i)
        assert reading.face_found and reading.labels == LABELS.split(", ")
        assert np.allclose(reading.probs, _clip_path_probs(analyzer, frame, tmp_path, f"frame{i}"), atol=1e-5)
    assert [at for at, _, _ in session.history] == [0.0, 0.2, 0.4]


def test_a_frame_larger_than_the_largest_side_scores_live_as_the_same_picture_in_a_file(
        analyzer, tmp_path, monkeypatch):
    """A file's pictures are downscaled to Limits.max_side before their faces are found; live frames were not
    (a 1600 px frame scored 8.7e-4 apart with the tiny model). Now both take the same pixels the same way."""
    frame = face_frames(1, size=Limits.max_side + 64)[0]
    searched = []
    find = analyzer.face_crops
    monkeypatch.setattr(analyzer, "face_crops", lambda images, *args: searched.append(images[0]) or find(images, *args))
    live = LiveSession(analyzer, LABELS).offer(frame, at=0.0)
    clip = _clip_path(analyzer, frame, tmp_path, "large")
    assert searched[0].shape == searched[1].shape == (Limits.max_side, Limits.max_side, 3)
    assert np.array_equal(searched[0], searched[1]), "the same downscaled pixels"
    assert np.array_equal(live.probs, clip.probs)


def test_a_model_with_its_own_templates_scores_live_frames_with_them(tiny_model, tmp_path):
    from dataclasses import replace

    from merclip.api import MerClip, build_head

    config = replace(tiny_model.config, templates={**tiny_model.config.templates, "vision": ("a {} person.",)})
    analyzer = Analyzer(MerClip(tiny_model.clip, build_head(config)), whisper="none")
    frame = face_frames(1)[0]
    live = LiveSession(analyzer, LABELS).offer(frame, at=0.0)
    assert np.allclose(live.probs, _clip_path_probs(analyzer, frame, tmp_path, "own"), atol=1e-5)
    assert not np.allclose(live.probs, _clip_path_probs(Analyzer(tiny_model, whisper="none"), frame, tmp_path,
                                                         "default"), atol=1e-4), "the templates matter here"


def test_smoothing_follows_time_not_the_frame_rate():
    step_up, step_down = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    once, twice = Smoother(half_life=0.5), Smoother(half_life=0.5)
    once.update(step_up, 0.0)
    twice.update(step_up, 0.0)
    assert np.allclose(once.update(step_down, 0.5), [0.5, 0.5]), "one half-life moves halfway"
    twice.update(step_down, 0.25)
    assert np.allclose(twice.update(step_down, 0.5), [0.5, 0.5]), "two frames in the same time move as far"


def test_a_frame_arriving_while_one_is_scored_is_dropped_not_queued(analyzer, monkeypatch):
    session = LiveSession(analyzer, LABELS)
    inside, release = threading.Event(), threading.Event()
    find = analyzer.face_crops

    def slow_face_crops(*args, **kwargs):
        inside.set()
        release.wait(10)
        return find(*args, **kwargs)

    monkeypatch.setattr(analyzer, "face_crops", slow_face_crops)
    frames = face_frames(2)
    first = []
    worker = threading.Thread(target=lambda: first.append(session.offer(frames[0], at=0.0)))
    worker.start()
    assert inside.wait(10)
    assert session.offer(frames[1], at=0.1) is None and session.dropped == 1
    release.set()
    worker.join(10)
    assert first[0] is not None and first[0].at == 0.0
    assert session.offer(frames[1], at=0.3) is not None, "the next frame after the busy one is scored"


def test_new_labels_take_effect_on_the_next_frame(analyzer):
    session = LiveSession(analyzer, LABELS)
    frames = face_frames(3)
    session.offer(frames[0], at=0.0)
    session.set_labels("calm, tense")
    reading = session.offer(frames[1], at=0.2)
    assert reading.labels == ["calm", "tense"] and len(reading.probs) == 2
    assert np.allclose(reading.smoothed, reading.probs), "smoothing starts again for the new labels"
    with pytest.raises(LabelError):
        session.set_labels(" , ")
    assert session.offer(frames[2], at=0.4).labels == ["calm", "tense"], "a mistake keeps the labels in use"
    assert [names for _, names, _ in session.history] == [tuple(LABELS.split(", ")), ("calm", "tense"), ("calm", "tense")]


def test_synonyms_and_anchors_typed_mid_stream_score_as_the_clip_path(analyzer, tmp_path):
    """Only the names used to be compared: synonyms and anchors typed after the first frame were ignored."""
    session = LiveSession(analyzer, "happy, sad")
    frame = face_frames(1)[0]
    session.offer(frame, at=0.0)
    for i, labels in enumerate(("happy|joyful|glad, sad|unhappy", "happy=1, sad=-1", "happy|joyful=1, sad|unhappy=-1")):
        session.set_labels(labels)
        live = session.offer(frame, at=0.2 * (i + 1)).prediction
        clip = _clip_path(analyzer, frame, tmp_path, f"labels{i}", labels)
        assert np.allclose(live.probs, clip.probs, atol=1e-5), labels
        assert (live.sentiment is None) == (clip.sentiment is None), labels
        assert clip.sentiment is None or live.sentiment == pytest.approx(clip.sentiment, abs=1e-5), labels
    assert not np.allclose(_clip_path(analyzer, frame, tmp_path, "plain", "happy, sad").probs,
                           _clip_path(analyzer, frame, tmp_path, "synonyms", "happy|joyful|glad, sad|unhappy").probs,
                           atol=1e-4), "the synonyms matter here"


def test_the_microphone_adds_spoken_words_and_voice_to_the_next_frames(analyzer):
    session = LiveSession(analyzer, LABELS)
    name = "cate_blanch.mp3"  # "I sleep with a dagger. If you so much as move to touch me, ..."
    speech = recordings((name,))[0][: 16000 * 5]
    loud = (np.clip(speech, -1, 1) * 32767).astype(np.int16)
    at48k = np.repeat(loud, 3)  # a browser microphone's 48 kHz
    chunk = 48000 // 2
    for i in range(0, len(at48k), chunk):
        session.hear(at48k[i: i + chunk], 48000, at=(i + chunk) / 48000)
    session.settle(60)
    words = " ".join(session.transcript).lower()
    assert sum(w in words for w in ("sleep", "dagger", "much", "move")) >= 2, words
    reading = session.offer(face_frames(1)[0], at=5.0)
    assert reading.prediction.modalities == ["text", "audio", "vision"]


def test_the_last_seconds_become_a_clip_for_the_full_analysis(analyzer, tmp_path):
    session = LiveSession(analyzer, LABELS)
    for i, frame in enumerate(face_frames(12)):
        session.offer(frame, at=0.25 * i)
    path = session.recent_clip(tmp_path / "last.mp4", seconds=2.0)
    result = analyzer.score(path, LABELS)
    assert result.modalities == ["vision"]
    assert result.frame_times[-1] == pytest.approx(2.0, abs=0.3), "the clip spans the last 2 s as they were timed"
    assert LiveSession(analyzer, LABELS).recent_clip(tmp_path / "none.mp4") is None


def test_visitors_streaming_at_once_each_get_their_own_faces_scores(analyzer, tmp_path):
    frames = face_frames(4, size=256)
    expected = [_clip_path_probs(analyzer, f, tmp_path, f"visitor{i}") for i, f in enumerate(frames)]
    sessions = [LiveSession(analyzer, LABELS) for _ in frames]
    readings = [[] for _ in frames]

    def stream(i):
        for k in range(3):
            readings[i].append(sessions[i].offer(frames[i], at=0.2 * k))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(len(frames))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads) and all(len(mine) == 3 for mine in readings)
    for i, mine in enumerate(readings):
        assert all(r is not None and np.allclose(r.probs, expected[i], atol=1e-5) for r in mine)
    assert not np.allclose(expected[0], expected[3], atol=1e-4), "the visitors' faces score differently"


def test_on_zero_gpu_live_frames_are_scored_on_the_cpu_by_a_copy_of_clip_with_the_start_up_whisper_and_faces(
        tmp_path, monkeypatch):
    """A ZeroGPU model runs its forwards in GPU slots: one per frame would spend the quota in seconds.
    CLIP and the head get a CPU copy; Whisper and the face detector, on the CPU already, are not loaded twice."""
    from demo.live_tab import live_service
    from demo.model_store import ModelChoice, ModelStore
    from merclip.api import MerClip

    placed = []
    store = ModelStore(ModelChoice("merclip-tiny:random", "bundled"), "cpu",
                       place=lambda model: placed.append(model) or model)
    start_up = store.analyzer(store.default)  # as app.py loads it, before the page
    live = live_service(store, tmp_path)
    analyzer = live.analyzer()
    assert type(analyzer.model) is MerClip and analyzer.model.device.type == "cpu" and placed == [start_up.model]
    assert "CPU" in live.where
    assert analyzer.recognizer is start_up.recognizer is not None, "one Whisper in the process"
    finding = start_up.face_crops
    searched = []
    monkeypatch.setattr(start_up, "face_crops", lambda *args: searched.append(len(args[0])) or finding(*args))
    frame = face_frames(1)[0]
    reading = LiveSession(analyzer, LABELS).offer(frame, at=0.0)
    assert reading.face_found and searched == [1], "the start-up face detector found it"
    assert np.allclose(reading.probs, _clip_path_probs(analyzer, frame, tmp_path, "zero"), atol=1e-5)


def test_the_page_keeps_a_session_per_visitor_and_forgets_those_who_leave_or_go_quiet(analyzer, tmp_path, monkeypatch):
    from types import SimpleNamespace

    import demo.live_tab
    from demo.live_tab import LiveService
    from demo.palette import LabelColours

    service = LiveService(lambda: analyzer, tmp_path, "the CPU")
    frame, colours = face_frames(1)[0], LabelColours()
    first, second = SimpleNamespace(session_hash="first"), SimpleNamespace(session_hash="second")
    bars, _, status, note = service.on_frame(frame, LABELS, colours, first)
    assert "updates/s" in status and "face found" in status and note == ""
    shown = [row[0].rsplit(" ", 1)[0] for row in bars.value["data"]]  # "neutral 22%", most likely first
    assert sorted(shown) == sorted(LABELS.split(", "))
    _, _, _, note = service.on_frame(frame, " , ", colours, first)
    assert note.startswith("⚠️") and "happy" in note, "a mistake is said; the labels in use stay"
    service.on_unload(first)
    assert service.active_sessions == 0
    service.on_frame(frame, LABELS, colours, second)
    monkeypatch.setattr(demo.live_tab, "LIVE_IDLE_SECONDS", 0)
    service.on_frame(frame, LABELS, colours, first)
    assert service.active_sessions == 1, "the quiet visitor was forgotten"


def test_the_rolling_chart_reads_in_seconds_ago_fits_its_values_names_its_lines_and_keeps_them_across_labels(
        analyzer):
    """The chart was a 0-1 axis of flat lines in seconds since the session began, without names on the lines,
    and blank after a change of labels."""
    from demo.live_tab import history_frame

    session = LiveSession(analyzer, "happy, sad, angry")
    frames = face_frames(8, size=128)
    for i in range(40):  # 20 s, the labels changed halfway
        if i == 20:
            session.set_labels("happy, sad, calm")
        session.offer(frames[i % len(frames)], at=100 + 0.5 * i)
    colours = {"happy": "#0072b2", "sad": "#e69f00", "calm": "#009e73", "angry": "#d55e00"}
    svg = history_frame(session, colours)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    lines = {line.split('data-label="')[1].split('"')[0]: line.split('points="')[1].split('"')[0].split()
             for line in svg.split("<polyline")[1:]}
    assert "seconds ago" in texts and {"-30", "-20", "-10", "0"} <= set(texts), texts
    ticks = [float(t[:-1]) for t in texts if t.endswith("%") and " " not in t]
    values = [float(p) for p in np.concatenate([h[2] for h in session.history])]
    assert 0 < min(ticks) and max(ticks) < 100 and max(ticks) - min(ticks) <= 100 * (max(values) - min(values)) + 20, \
        f"fitted to the values {min(values):.2f}-{max(values):.2f}: {ticks}"
    assert set(lines) == {"happy", "sad", "calm"}
    starts = {label: float(points[0].split(",")[0]) for label, points in lines.items()}
    assert starts["happy"] == starts["sad"] == -19.5 and starts["calm"] == -9.5, "kept labels keep their history"
    named = {t.rsplit(" ", 1)[0] for t in texts if t.endswith("%") and " " in t}
    assert named == {"happy", "sad", "calm"}, f"each line named at its end: {texts}"
    for label in lines:
        assert f'stroke="{colours[label]}"' in svg.split(f'data-label="{label}"')[1].split("/>")[0], label


def test_the_names_at_the_lines_ends_stay_beside_the_chart_when_many_end_low(analyzer):
    """Nine labels ending together near the bottom had their names pushed below the chart's box."""
    from demo.live_tab import CHART_HEIGHT, CHART_TOP, history_frame

    labels = [f"label{i}" for i in range(10)]
    session = LiveSession(analyzer, ", ".join(labels))
    probs = np.array([0.55] + [0.05] * 9)
    session.history.extend((100 + 0.5 * i, labels, probs) for i in range(10))
    svg = history_frame(session, {label: "#0072b2" for label in labels})
    heights = [float(y) for y in re.findall(r'class="live-line-name"[^>]* y="([0-9.]+)"', svg)]
    assert len(heights) == 10
    assert all(CHART_TOP <= y - 4 <= CHART_TOP + CHART_HEIGHT for y in heights), heights
    assert min(np.diff(sorted(heights))) >= 13.9, "and apart from each other"


def test_the_chart_keeps_the_tick_at_the_bottom_of_its_range_when_the_bound_carries_a_rounding_error(analyzer):
    """Lines from 5% to 55% fit a 0-60% range whose bottom came out as 5.6e-17, not 0: its 0% tick was lost."""
    from demo.live_tab import history_frame

    session = LiveSession(analyzer, "happy, sad")
    session.history.extend((100 + 0.5 * i, ("happy", "sad"), np.array([0.55, 0.05])) for i in range(10))
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", history_frame(session, {"happy": "#0072b2", "sad": "#e69f00"}))
    assert [t for t in texts if t.endswith("%") and " " not in t] == ["0%", "20%", "40%", "60%"], texts
