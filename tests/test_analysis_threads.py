"""The two paths of an analysis (picture here, sound in a second thread) behave as one request."""

import contextvars
import threading

import numpy as np
import pytest

from merclip import MerClipError
from merclip.media.acoustic_features import SAMPLE_RATE, audio_frame_features
from merclip.media.sample_media import speech_clip
from merclip.reading.analyzer import Analyzer

REQUEST = contextvars.ContextVar("request", default=None)  # how Gradio finds the request of a progress call


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    # librosa compiles its kernels on first use (about 28 s on a cold 2-core machine, the suite's first
    # test): that one-time cost belongs to no analysis, so it is paid here, before the sound path is timed
    audio_frame_features(np.random.default_rng(0).uniform(-0.5, 0.5, SAMPLE_RATE).astype(np.float32))
    return speech_clip(tmp_path_factory.mktemp("threads") / "clip.mp4", seconds=3)


class BlockingWhisper:
    """Transcribes only once released; records whether it went on after being released."""

    def __init__(self) -> None:
        self.started, self.release, self.went_on = threading.Event(), threading.Event(), False

    def transcribe(self, waveform, check):
        self.started.set()
        self.release.wait(timeout=30)
        check()
        self.went_on = True
        raise AssertionError("unreachable: the analysis was stopped")


def test_a_picture_path_error_does_not_wait_for_the_sound_path(tiny_model, clip, monkeypatch):
    analyzer = Analyzer(tiny_model)
    whisper = analyzer._recognizer = BlockingWhisper()

    def failing_picture(*args):
        assert whisper.started.wait(timeout=30), "the sound path is transcribing"
        raise MerClipError("no video frame could be decoded")

    monkeypatch.setattr(analyzer, "_picture", failing_picture)
    with pytest.raises(MerClipError, match="no video frame"):
        analyzer.score(clip, "happy, sad")
    assert not whisper.release.is_set(), "the error came while Whisper was still busy"
    whisper.release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("merclip-sound"):
            thread.join(timeout=30)
    assert not whisper.went_on, "the sound path stopped at its next check"


def test_progress_from_the_sound_thread_reaches_the_request(tiny_model, clip):
    seen = []
    REQUEST.set("visitor-1")
    Analyzer(tiny_model).score(clip, "happy, sad", progress=lambda fraction, what: seen.append((what, REQUEST.get())))
    steps = dict(seen)
    assert steps["decoding audio"] == "visitor-1" and steps["transcribing speech"] == "visitor-1", seen
    assert steps["finding faces"] == "visitor-1"
