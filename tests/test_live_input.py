"""Live mode's microphone events take chunks from any client (by fn_index, whatever the page hides): a chunk
that cannot be microphone sound is refused before it costs memory, a long one is kept whole, and a visitor
who sends utterances faster than the shared Whisper hears them loses their own oldest, not others' turn."""

import struct
import threading
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from demo.live_tab import LiveService
from merclip.errors import MerClipError
from merclip.head.inputs import ClipFeatures
from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.reading.analyzer import Analyzer
from merclip.reading.live import WAITING_UTTERANCES, LiveSession

LABELS = "happy, sad, neutral"


@pytest.fixture
def analyzer(tiny_model):
    return Analyzer(tiny_model, whisper="none")


def _noise(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Loud int16 sound (speech as the utterance detector hears it)."""
    return (np.random.default_rng(0).uniform(-0.3, 0.3, int(seconds * rate)) * 32767).astype(np.int16)


def wav(samples: np.ndarray, rate: int = SAMPLE_RATE, encoding: int | None = None, bits: int | None = None,
        channels: int | None = None, declared: int | None = None) -> bytes:
    """A microphone chunk as the browser streams it: a WAV header (which may claim anything), then the samples."""
    channels = channels or (samples.shape[1] if samples.ndim == 2 else 1)
    encoding = encoding or (3 if samples.dtype.kind == "f" else 1)
    bits = bits or samples.dtype.itemsize * 8
    data = samples.tobytes()
    form = struct.pack("<HHIIHH", encoding, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    size = len(data) if declared is None else declared
    return b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + struct.pack("<I", 16) + form + b"data" + \
        struct.pack("<I", size) + data


HOSTILE = {  # a chunk as a client can send it
    "no rate": wav(np.zeros(24000, np.int16), rate=0),
    "40 KB claiming 2 Hz": wav(_noise(1.25), rate=2),
    "a rate of 250 MHz": wav(np.zeros(24000, np.int16), rate=250_000_000),
    "8-bit samples": wav(np.zeros(24000, np.uint8)),
    "24-bit samples": wav(np.zeros(24000 * 3, np.uint8), bits=24),
    "an unknown encoding": wav(np.zeros(24000, np.int16), encoding=7),
    "three channels": wav(np.zeros((24000, 3), np.int16)),
    "10.5 s in one chunk": wav(np.zeros(int(48000 * 10.5), np.int16), rate=48000),
    "not a WAV": b"OggS" + bytes(1000),
    "a header cut short": wav(np.zeros(0, np.int16))[:28],
    "not a number": wav(np.full(24000, np.nan, np.float32)),
    "beyond float32": wav(np.full(24000, 1e300)),
}


def _sent(tmp_path, data: bytes, name: str = "chunk") -> str:
    """The chunk as Gradio hands it to the handler: a file's path."""
    path = tmp_path / f"{name}.wav"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case", HOSTILE)
def test_a_chunk_that_cannot_be_microphone_sound_is_refused_in_one_line_before_it_costs_memory(
        analyzer, tmp_path, case):
    """A 40 KB chunk claiming 2 Hz was resampled before anything was checked: 3.6 GiB for one chunk."""
    service = LiveService(lambda: analyzer, tmp_path, "the CPU")
    visitor = SimpleNamespace(session_hash="visitor")
    service.session(visitor.session_hash, LABELS)
    tracemalloc.start()
    try:
        said = service.on_sound(_sent(tmp_path, HOSTILE[case]), visitor)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(said).startswith("⚠️ microphone sound refused") and "\n" not in said, (case, said)
    assert peak < 2 ** 20, f"{case}: {peak / 2 ** 20:.0f} MiB"
    good = _sent(tmp_path, wav(np.zeros(24000, np.int16), rate=48000), "good")
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
        service.on_sound(_sent(tmp_path, wav(_noise(1)), "loud"), visitor)
        return service.on_sound(_sent(tmp_path, wav(np.zeros(SAMPLE_RATE // 2, np.int16)), "pause"), visitor)  # ends it

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
    quiet = _sent(tmp_path, wav(np.zeros(SAMPLE_RATE // 10, np.int16)), "quiet")
    assert service.on_sound(quiet, flooder).startswith("flooder flooder flooder\n⚠️ 4 of your utterances")
    assert service.on_sound(quiet, polite) == "polite", "no note for the visitor who waited their turn"


def test_chunks_the_browser_sends_under_one_header_after_a_busy_moment_are_all_heard(analyzer, tmp_path, monkeypatch):
    """While the server answers a chunk, the browser keeps the next 0.1 s chunks and sends them after the first
    one's WAV header, which gives the length of 0.1 s: Gradio's reader kept that much, and ~40% of a visitor's
    speech was lost on a busy server (measured in Chromium). Through the page's own microphone component."""
    import gradio as gr
    from gradio.data_classes import FileData

    from demo.page import _live_tab

    service = LiveService(lambda: analyzer, tmp_path, "the CPU")
    with gr.Blocks():
        microphone = _live_tab(service)["microphone"]
    visitor = SimpleNamespace(session_hash="visitor")
    session = service.session(visitor.session_hash, LABELS)
    heard = []
    monkeypatch.setattr(session, "_features_of", lambda window: heard.append(len(window)) or ClipFeatures())
    speech = _noise(1.0, 48000)  # ten 0.1 s chunks sent at once
    backlog = wav(speech, rate=48000, declared=4800 * 2)
    for name, data in (("backlog", backlog), ("pause", wav(np.zeros(24000, np.int16), rate=48000))):
        service.on_sound(microphone.preprocess(FileData(path=_sent(tmp_path, data, name))), visitor)
    session.settle(30)
    assert heard and heard[0] >= SAMPLE_RATE, f"the whole second of speech: {heard}"


def test_a_warning_in_the_heard_box_reads_as_plain_text(analyzer, tmp_path, monkeypatch):
    """The box is a text box: escaped warnings showed as "the microphone&#x27;s ..." there."""
    service = LiveService(lambda: analyzer, tmp_path, "the CPU")
    visitor = SimpleNamespace(session_hash="visitor")
    session = service.session(visitor.session_hash, LABELS)

    def refuse(samples, rate):
        raise MerClipError("the microphone's sound <refused> & said")

    monkeypatch.setattr(session, "hear", refuse)
    said = service.on_sound(_sent(tmp_path, wav(np.zeros(1600, np.int16))), visitor)
    assert said == "⚠️ the microphone's sound <refused> & said"
