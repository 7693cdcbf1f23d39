"""Live mode's microphone: chunks in any format the browser sends give the same sound and words, the
exported last seconds hold the sound when it was heard, and a sentence is heard as soon as it ends."""

from types import SimpleNamespace

import librosa
import numpy as np
import pytest
from scipy.signal import correlate

from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.audio_decode import read_waveform
from merclip.media.sample_media import face_frames, recordings
from merclip.reading.analyzer import Analyzer
from merclip.reading.live import LiveSession

LABELS = "happy, sad, neutral"
SENTENCE = "heath_ledger.mp3"  # "If you're good at something, never do it for free." (3.0 s)
HOP = SAMPLE_RATE // 20  # loudness per 50 ms


@pytest.fixture(scope="module")
def sentence():
    return recordings((SENTENCE,))[0]


def _as_microphone(sound: np.ndarray, rate: int, dtype: str, channels: int) -> np.ndarray:
    """16 kHz float sound as a microphone at `rate` sends it: integers at full scale or floats, (n,) or (n, channels)."""
    resampled = sound.astype(np.float64) if rate == SAMPLE_RATE else librosa.resample(
        sound.astype(np.float64), orig_sr=SAMPLE_RATE, target_sr=rate)
    if np.issubdtype(np.dtype(dtype), np.integer):
        sent = (np.clip(resampled, -1, 1) * np.iinfo(dtype).max).astype(dtype)
    else:
        sent = resampled.astype(dtype)
    return np.repeat(sent[:, None], channels, axis=1) if channels > 1 else sent


def _stream(session: LiveSession, sent: np.ndarray, rate: int, chunk_seconds: float = 0.5, start: float = 0.0) -> None:
    """Feed a recording in chunks, each at the time it ends."""
    step = int(rate * chunk_seconds)
    for i in range(0, len(sent), step):
        piece = sent[i: i + step]
        session.hear(piece, rate, at=start + (i + len(piece)) / rate)


def _exported_sound(session: LiveSession, path, seconds: float = 10.0) -> np.ndarray:
    """The sound of the clip "Analyse the last seconds" exports, decoded as the analysis decodes it."""
    return read_waveform(session.recent_clip(path, seconds), max_seconds=60)[0]


def _loud(sound: np.ndarray, db: float = -40) -> np.ndarray:
    """Start times (s) of the 50 ms stretches louder than `db` dBFS."""
    frames = sound[: len(sound) // HOP * HOP].reshape(-1, HOP).astype(np.float64)
    return np.flatnonzero(np.sqrt((frames ** 2).mean(axis=1)) > 10 ** (db / 20)) * HOP / SAMPLE_RATE


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_microphone_chunks_of_any_type_and_channels_give_the_same_sound(tiny_model, tmp_path, rate):
    """Stereo int16 was averaged to floats first and never scaled: 32767 times too loud."""
    speech = recordings(("cate_blanch.mp3",))[0][: 4 * SAMPLE_RATE]
    analyzer = Analyzer(tiny_model, whisper="none")
    frame = face_frames(1)[0]
    for dtype in ("int16", "int32", "float32", "float64"):
        for channels in (1, 2):
            session = LiveSession(analyzer, LABELS)
            session.offer(frame, at=0.0)
            _stream(session, _as_microphone(speech, rate, dtype, channels), rate)
            session.offer(frame, at=4.0)
            heard = _exported_sound(session, tmp_path / f"{dtype}{channels}.mp4")
            case = f"{dtype} x {channels} at {rate} Hz"
            assert np.abs(heard).max() == pytest.approx(np.abs(speech).max(), rel=0.05), case
            assert np.corrcoef(heard[: len(speech)], speech[: len(heard)])[0, 1] > 0.99, case


def test_microphone_chunks_of_any_type_and_channels_give_the_same_words(tmp_path, tiny_model, sentence):
    analyzer = Analyzer(tiny_model, whisper="bundled")
    spoken = np.concatenate([sentence, np.zeros(SAMPLE_RATE, np.float32)])
    heard = {}
    for rate, dtype, channels in [(48000, "int16", 2), (44100, "int16", 1), (16000, "float32", 2),
                                  (48000, "float64", 1), (44100, "int32", 2)]:
        session = LiveSession(analyzer, LABELS)
        _stream(session, _as_microphone(spoken, rate, dtype, channels), rate)
        session.settle(60)
        heard[f"{dtype} x {channels} at {rate} Hz"] = " ".join(session.transcript).lower()
    assert all("good at something" in words and "free" in words for words in heard.values()), heard
    assert len(set(heard.values())) == 1, heard


def test_the_exported_last_seconds_have_the_sound_when_it_was_heard(tiny_model, tmp_path, sentence):
    """The kept chunks were laid end to end from the clip's start: sound heard at 6 s played at 0 s."""
    session = LiveSession(Analyzer(tiny_model, whisper="none"), LABELS)
    frames = face_frames(20, size=128)
    for i, frame in enumerate(frames):  # the camera: 0 to 9.5 s
        session.offer(frame, at=0.5 * i)
    spoken = sentence[: 3 * SAMPLE_RATE]  # loud throughout
    _stream(session, spoken[: 2 * SAMPLE_RATE], SAMPLE_RATE, start=6.0)  # the microphone: 6 to 8 s,
    _stream(session, spoken[2 * SAMPLE_RATE:], SAMPLE_RATE, start=9.0)  # off for a second, then 9 to 10 s

    loud = _loud(_exported_sound(session, tmp_path / "all.mp4"))
    chunk = 0.5
    assert loud.min() == pytest.approx(6.0, abs=chunk), "nothing before the microphone started"
    assert not any(8.0 + chunk / 2 < t < 9.0 - chunk / 2 for t in loud), "silence while it was off"
    assert any(9.0 <= t < 9.5 for t in loud), "then the sound again"
    assert loud.max() == pytest.approx(9.5, abs=chunk), "up to the last frame"

    session.offer(frames[0], at=10.0)
    last4 = _loud(_exported_sound(session, tmp_path / "last4.mp4", seconds=4.0))  # from 6 s
    assert last4.min() == pytest.approx(0.0, abs=chunk) and last4.max() == pytest.approx(4.0, abs=chunk)
    assert not any(2.0 + chunk / 2 < t < 3.0 - chunk / 2 for t in last4), "silence while it was off"


def test_a_sentence_followed_by_a_pause_is_heard_before_4_seconds_have_passed(tiny_model, sentence):
    """Sound used to be transcribed every 4 s only; now a pause after speech ends the utterance at once."""
    analyzer = Analyzer(tiny_model, whisper="bundled")
    session = LiveSession(analyzer, LABELS)
    pause = np.zeros(int(0.75 * SAMPLE_RATE), np.float32)
    chunk = 0.25
    _stream(session, np.concatenate([sentence, pause]), SAMPLE_RATE, chunk)  # 3.0 s spoken + 0.75 s quiet: 3.75 s
    session.settle(60)
    first = " ".join(session.transcript).lower()
    assert "good at something" in first and "free" in first, first
    assert session.offer(face_frames(1)[0], at=3.75).prediction.modalities == ["text", "audio", "vision"]

    _stream(session, np.concatenate([sentence, pause]), SAMPLE_RATE, chunk, start=3.75)  # said again: its own utterance
    session.settle(60)
    both = " ".join(session.transcript).lower()
    assert both.count("free") == 2 and both.startswith(first), both

    assert session.hear(np.zeros(int(chunk * SAMPLE_RATE), np.float32), SAMPLE_RATE, at=7.75), "new words to show"
    _stream(session, np.zeros(4 * SAMPLE_RATE, np.float32), SAMPLE_RATE, chunk, start=8.0)
    assert session.offer(face_frames(1)[0], at=12.0).prediction.modalities == ["vision"], "4 s of silence clear them"


def test_the_exported_last_seconds_hold_the_speech_when_chunks_arrive_late_and_in_bursts(tiny_model, tmp_path,
                                                                                        sentence):
    """Chromium sends 0.1 s chunks that reach the server up to ~0.6 s late, several at once (measured): placed
    at their arrival times they overlapped and left gaps, and the exported clip was mostly silence."""
    session = LiveSession(Analyzer(tiny_model, whisper="none"), LABELS)
    frames = face_frames(8, size=128)
    spoken = sentence[: 3 * SAMPLE_RATE]
    step = SAMPLE_RATE // 10
    lateness = np.random.default_rng(0).uniform(0.0, 0.5, len(spoken) // step)
    for i, late in enumerate(lateness):  # each chunk arrives when it ends plus up to half a second
        session.offer(frames[i % len(frames)], at=(i + 1) * 0.1)
        session.hear(spoken[i * step: (i + 1) * step], SAMPLE_RATE, at=(i + 1) * 0.1 + late)
    session.offer(frames[0], at=3.5)
    heard = _exported_sound(session, tmp_path / "late.mp4")
    assert len(_loud(heard)) >= 0.9 * len(_loud(spoken)), "as much speech as was said"
    padded = np.concatenate([heard, np.zeros(SAMPLE_RATE, np.float32)])
    shift = int(np.argmax(correlate(padded, spoken, mode="valid", method="fft")))  # where its first (late) chunk put it
    similarity = np.corrcoef(padded[shift: shift + len(spoken)], spoken)[0, 1]
    assert similarity > 0.99, f"the sentence whole, in the order it was said: {similarity:.2f} at {shift} samples"


def test_a_phrase_whisper_loops_on_shows_once(tiny_model, monkeypatch):
    """Whisper looped "if I don't" nine times in one window of choppy speech (seen live): it showed nine times."""
    from merclip.speech.transcribe import Transcript, Word

    analyzer = Analyzer(tiny_model, whisper="none")  # Whisper's answer is the looped one below
    looped = "If I don't, if I don't, if I don't, if I don't, if I don't, if I don't, if I don't, if I don't, " \
             "if I don't, I will. I said it, I said it."
    monkeypatch.setattr("merclip.reading.live.live_recognizer", lambda recognizer: SimpleNamespace(
        transcribe=lambda window: Transcript(looped, [Word(w, 0.0, 0.1) for w in looped.split()])))
    session = LiveSession(analyzer, LABELS)
    _stream(session, np.concatenate([recordings((SENTENCE,))[0], np.zeros(SAMPLE_RATE, np.float32)]), SAMPLE_RATE)
    session.settle(60)
    assert " ".join(session.transcript) == "If I don't, I will. I said it, I said it.", \
        "the loop once; a phrase said twice stays"
