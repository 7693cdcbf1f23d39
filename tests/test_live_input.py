"""Live mode's microphone events take chunks from any client (by fn_index, whatever the page hides): a chunk
that cannot be microphone sound is refused before it costs memory, a long one is kept whole, and a visitor
who sends utterances faster than the shared Whisper hears them loses their own oldest, not others' turn."""

import threading
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from demo.live import LiveService
from merclip.analysis import Analyzer
from merclip.audio_features import SAMPLE_RATE
from merclip.features import ClipFeatures
from merclip.live import WAITING_UTTERANCES, LiveSession

LABELS = "happy, sad, neutral"


@pytest.fixture
def analyzer(tiny_model):
    return Analyzer(tiny_model, whisper="none")


def _noise(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Loud int16 sound (speech as the utterance detector hears it)."""
    return (np.random.default_rng(0).uniform(-0.3, 0.3, int(seconds * rate)) * 32767).astype(np.int16)


HOSTILE = {  # (sample rate, samples) as a client can send them
    "no rate": (0, np.zeros(24000, np.int16)),
    "40 KB claiming 2 Hz": (2, _noise(1.25)),
    "a negative rate": (-48000, np.zeros(24000, np.int16)),
    "a rate of 1 GHz": (10 ** 9, np.zeros(24000, np.int16)),
    "a fractional rate": (44100.5, np.zeros(24000, np.int16)),
    "complex samples": (48000, np.zeros(24000, np.complex64)),
    "text samples": (48000, np.array(["loud"] * 100)),
    "object samples": (48000, np.array([None] * 100)),
    "unsigned samples": (48000, np.zeros(24000, np.uint8)),
    "three channels": (48000, np.zeros((24000, 3), np.int16)),
    "channels first": (48000, np.zeros((2, 24000), np.int16)),
    "a cube": (48000, np.zeros((100, 2, 2), np.int16)),
    "one number": (48000, np.array(0.5, np.float32)),
    "10.5 s in one chunk": (48000, np.zeros(int(48000 * 10.5), np.int16)),
    "not a number": (48000, np.full(24000, np.nan, np.float32)),
    "beyond float32": (48000, np.full(24000, 1e300)),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_chunk_that_cannot_be_microphone_sound_is_refused_in_one_line_before_it_costs_memory(
        analyzer, tmp_path, case):
    """A 40 KB chunk claiming 2 Hz was resampled before anything was checked: 3.6 GiB for one chunk."""
    service = LiveService(lambda: analyzer, tmp_path, "the CPU")
    visitor = SimpleNamespace(session_hash="visitor")
    service.session(visitor.session_hash, LABELS)
    tracemalloc.start()
    try:
        said = service.on_sound(HOSTILE[case], visitor)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(said).startswith("⚠️ microphone sound refused") and "\n" not in said, (case, said)
    assert peak < 2 ** 20, f"{case}: {peak / 2 ** 20:.0f} MiB"
    good = (48000, np.zeros(24000, np.int16))
    assert not str(service.on_sound(good, visitor)).startswith("⚠️"), "the next chunk is heard"


def test_a_chunk_of_10_s_after_a_pause_is_kept_whole_and_heard(analyzer, monkeypatch):
    """A long chunk after a pause was dropped with everything kept, and the next step raised ValueError."""
    session = LiveSession(analyzer, LABELS)
    heard = []
    monkeypatch.setattr(session, "_features_of", lambda window: heard.append(len(window)) or ClipFeatures())
    session.hear(np.zeros(SAMPLE_RATE // 2, np.int16), SAMPLE_RATE, at=0.5)
    session.hear(_noise(10, 48000), 48000, at=11.0)  # 10 s of speech in one chunk, half a second after the last
    session.settle(30)
    assert heard == [10 * SAMPLE_RATE], "all of it, as one utterance"


def test_a_visitor_flooding_the_shared_whisper_loses_their_oldest_utterances_not_the_others_turn(
        analyzer, tmp_path, monkeypatch):
    """The listener's queue had no bound per visitor: one client's utterances delayed everyone's words."""
    service = LiveService(lambda: analyzer, tmp_path, "the CPU")
    flooder, polite = SimpleNamespace(session_hash="flooder"), SimpleNamespace(session_hash="polite")
    sessions = {service.session(v.session_hash, LABELS): v.session_hash for v in (flooder, polite)}
    order, inside, release = [], threading.Event(), threading.Event()

    def transcribe_slowly(session, window):
        order.append(sessions[session])
        inside.set()
        release.wait(30)
        return ClipFeatures(words=[sessions[session]])

    monkeypatch.setattr(LiveSession, "_features_of", transcribe_slowly)

    def utterance(visitor) -> str:
        service.on_sound((SAMPLE_RATE, _noise(1)), visitor)
        return service.on_sound((SAMPLE_RATE, np.zeros(SAMPLE_RATE // 2, np.int16)), visitor)  # the pause ends it

    try:
        utterance(flooder)
        assert inside.wait(30), "Whisper is busy with the flooder's first utterance"
        said = [utterance(flooder) for _ in range(6)]
        utterance(polite)
    finally:
        release.set()
    for session in sessions:
        session.settle(30)
    assert order == ["flooder"] * (1 + WAITING_UTTERANCES) + ["polite"], order
    assert "⚠️ 4 of your utterances went untranscribed" in said[-1], "said when they are dropped"
    quiet = (SAMPLE_RATE, np.zeros(SAMPLE_RATE // 10, np.int16))
    assert service.on_sound(quiet, flooder).startswith("flooder flooder flooder\n⚠️ 4 of your utterances")
    assert service.on_sound(quiet, polite) == "polite", "no note for the visitor who waited their turn"
