"""Live mode's Whisper runs in a process of its own, on one thread under SCHED_IDLE, so the camera's
frames keep the CPU while it transcribes; a worker that dies or cannot load is said, and the stream goes on."""

import os
import signal
import time

import numpy as np
import pytest

from merclip.errors import MerClipError
from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.sample_media import face_frames, recordings
from merclip.reading.analyzer import Analyzer
from merclip.reading.live import LiveSession
from merclip.speech.live_hearing import WhisperWorker, live_recognizer

LABELS = "happy, sad, neutral"


@pytest.fixture(scope="module")
def spoken():
    """ "If you're good at something, never do it for free." and a pause that ends it."""
    return np.concatenate([recordings(("heath_ledger.mp3",))[0], np.zeros(SAMPLE_RATE, np.float32)])


def _say(session: LiveSession, sound: np.ndarray, start: float = 0.0) -> None:
    step = SAMPLE_RATE // 2
    for i in range(0, len(sound), step):
        session.hear(sound[i: i + step], SAMPLE_RATE, at=start + (i + step) / SAMPLE_RATE)


def test_live_words_come_from_a_whisper_process_that_yields_to_the_frames(tiny_model, spoken, monkeypatch):
    analyzer = Analyzer(tiny_model, whisper="bundled")
    monkeypatch.setattr(analyzer.recognizer, "transcribe", lambda *a, **k: pytest.fail("the process's own Whisper"))
    session = LiveSession(analyzer, LABELS)
    _say(session, spoken)
    session.settle(120)
    assert "good at something" in " ".join(session.transcript).lower()
    worker = live_recognizer(analyzer.recognizer)
    assert isinstance(worker, WhisperWorker) and worker.pid not in (None, os.getpid())
    assert os.sched_getscheduler(worker.pid) == os.SCHED_IDLE, "the frames preempt it"
    assert session.offer(face_frames(1)[0], at=5.0).prediction.modalities == ["text", "audio", "vision"]


def test_a_killed_whisper_process_is_said_the_stream_goes_on_and_the_next_utterance_is_heard(tiny_model, spoken):
    analyzer = Analyzer(tiny_model, whisper="bundled")
    session = LiveSession(analyzer, LABELS)  # its first sound starts the worker (a dead one is replaced quietly)
    _say(session, spoken)
    session.settle(120)
    pid = live_recognizer(analyzer.recognizer).pid
    os.kill(pid, signal.SIGKILL)
    _wait_until_dead(pid)  # as when it died between utterances: its end is seen before the next window is sent
    length = len(spoken) / SAMPLE_RATE
    _say(session, spoken, start=length)
    with pytest.raises(MerClipError, match="Whisper process ended"):
        session.settle(120)
    assert session.offer(face_frames(1)[0], at=2 * length).prediction is not None, "the camera goes on"
    _say(session, spoken, start=2 * length)
    session.settle(120)
    assert " ".join(session.transcript).lower().count("good at something") == 2, "a new worker heard the third one"


def _wait_until_dead(pid: int, seconds: float = 10) -> None:
    """Until the killed process is a zombie (dead, not yet reaped by its parent): then `poll()` sees its end."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.01)
    pytest.fail(f"process {pid} still alive {seconds} s after SIGKILL")


def test_a_whisper_the_worker_cannot_load_says_why(tmp_path):
    worker = WhisperWorker(str(tmp_path), english_only=True)  # a folder without a model in it
    with pytest.raises(MerClipError, match="could not be loaded"):
        worker.transcribe(np.zeros(SAMPLE_RATE, np.float32))
    assert worker.pid is None
