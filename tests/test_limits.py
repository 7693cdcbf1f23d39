"""Limits that hold: time per request, label and template size, transcript length."""

import threading
import time

import pytest

from merclip import MerClipError
from merclip.labels.encoder import MAX_PROMPTS
from merclip.labels.parsing import MAX_LABEL_CHARS, MAX_LABELS
from merclip.limits import Limits
from merclip.media.faces import FaceDetector
from merclip.media.sample_media import speech_clip
from merclip.reading.analyzer import MAX_TRANSCRIPT_CHARS, AnalysisOptions, Analyzer
from merclip.speech.transcribe import load_whisper
from tests.bad_inputs import LONG, LONG_TRANSCRIPT


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("limits") / "clip.mp4", seconds=10)


def sound_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("merclip-sound")]


def test_an_analysis_past_its_deadline_is_stopped_mid_step_and_the_next_one_runs(tiny_model, clip_path, monkeypatch):
    analyzer = Analyzer(tiny_model, whisper="bundled")
    analyzer.score(clip_path, "warm, up")  # Whisper loaded: the timing below is the analysis alone
    real_find = FaceDetector.find
    monkeypatch.setattr(FaceDetector, "find", lambda self, image: time.sleep(0.4) or real_find(self, image))
    started = time.monotonic()
    with pytest.raises(MerClipError, match=r"stopped after 1 s, the time allowed per request \(while .*finding faces"):
        analyzer.score(clip_path, "happy, sad", options=AnalysisOptions(limits=Limits(frames=7, deadline_seconds=1)))
    elapsed = time.monotonic() - started
    assert elapsed < 1 + 0.4 + 0.6 < 7 * 0.4, f"stopped within a frame of the deadline, not at the end ({elapsed:.2f} s)"
    for thread in sound_threads():  # not waited for by the failed request, it stops at its next check
        thread.join(timeout=5)
    assert sound_threads() == [], "the sound path stops too: the worker is free"
    monkeypatch.setattr(FaceDetector, "find", real_find)
    result = analyzer.score(clip_path, "happy, sad", options=AnalysisOptions(limits=Limits(frames=7)))
    assert result.modalities == ["text", "audio", "vision"]


def test_transcription_checks_the_deadline_between_segments():
    from merclip.media.sample_media import speech_track

    waveform = speech_track(70)  # more than two of Whisper's 30 s windows
    recognizer = load_whisper("bundled")
    calls = []
    assert len(recognizer.transcribe(waveform, lambda: calls.append(1)).words) > 30
    assert len(calls) >= 3, "one check per decoded segment"

    def stop():
        calls.append("stop")
        raise MerClipError("stopped")

    calls.clear()
    with pytest.raises(MerClipError, match="stopped"):
        recognizer.transcribe(waveform, stop)
    assert calls == ["stop"], "nothing is decoded after the check that stops it"


def test_the_deadline_is_not_part_of_the_cache_key(tiny_model, clip_path):
    analyzer = Analyzer(tiny_model, whisper="none")
    first, _ = analyzer.analyse(clip_path, AnalysisOptions(limits=Limits(deadline_seconds=100)))
    again, cached = analyzer.analyse(clip_path, AnalysisOptions(limits=Limits(deadline_seconds=50)))
    assert cached and again.key == first.key


def test_long_labels_templates_and_transcripts_are_bounded(tiny_model, clip_path):
    analyzer = Analyzer(tiny_model, whisper="none")
    result = analyzer.score(clip_path, f"{LONG}happy, sad")
    assert len(result.labels[0]) <= MAX_LABEL_CHARS
    assert any(f"longer than {MAX_LABEL_CHARS} characters" in w for w in result.warnings)
    with pytest.raises(MerClipError, match=f"at most {MAX_LABELS}"):
        analyzer.score(clip_path, ", ".join(f"label{i}" for i in range(MAX_LABELS + 1)))
    many_synonyms = ", ".join("|".join(f"l{i}s{j}" for j in range(16)) for i in range(MAX_LABELS))
    with pytest.raises(MerClipError, match=f"make {MAX_LABELS * 16 * 7} prompts; at most {MAX_PROMPTS}"):
        analyzer.score(clip_path, many_synonyms)
    with pytest.raises(MerClipError, match="longer than 300 characters"):
        analyzer.score(clip_path, "happy", {"vision": LONG + "{}"})
    long = analyzer.score(clip_path, "happy, sad", options=AnalysisOptions(transcript=LONG_TRANSCRIPT))
    assert any(f"cut to its first {MAX_TRANSCRIPT_CHARS} characters" in w for w in long.warnings)
    assert len(long.transcript["text"]) <= MAX_TRANSCRIPT_CHARS
    assert long.stage("text").attention.shape[1] == len(long.transcript["words"])


def test_limits_reject_nonsense():
    for bad in (dict(deadline_seconds=0), dict(max_seconds=-1), dict(frames=0), dict(frames=33)):
        with pytest.raises(MerClipError):
            Limits(**bad)
