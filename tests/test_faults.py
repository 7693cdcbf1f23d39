"""Parts that fail at run time (Whisper, the disk cache) cost a warning, never the analysis."""

import json

import pytest
from safetensors import SafetensorError

from merclip.head import tensor_files
from merclip.limits import Limits
from merclip.media.sample_media import speech_clip
from merclip.reading.analyzer import AnalysisOptions, Analyzer
from merclip.reading.disk_cache import DiskCache

LABELS = "happy, sad"
EXPECTED = {"missing folder": "Whisper folder", "wrong architecture": "Whisper model at"}


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("faults") / "clip.mp4", seconds=3)


def broken_whisper_folders(tmp_path):
    missing = tmp_path / "no-such-whisper"
    wrong = tmp_path / "not-whisper"
    wrong.mkdir()
    (wrong / "config.json").write_text(json.dumps({"architecture": "TransformerEncoder"}))
    (wrong / "model.bin").write_bytes(b"\x00garbage, not a CTranslate2 model" * 100)
    return {"missing folder": missing, "wrong architecture": wrong}


@pytest.mark.parametrize("case", ["missing folder", "wrong architecture"])
def test_whisper_that_cannot_load_leaves_audio_and_vision(tiny_model, clip_path, tmp_path, case):
    whisper = str(broken_whisper_folders(tmp_path)[case])
    analyzer = Analyzer(tiny_model, whisper=whisper)
    for frames in (8, 4):  # a second analysis (other options) meets the remembered failure
        result = analyzer.score(clip_path, LABELS, options=AnalysisOptions(limits=Limits(frames=frames)))
        assert result.modalities == ["audio", "vision"] and result.missing == ["text"]
        assert any(w.startswith(f"speech recognition is unavailable ({EXPECTED[case]}") and "text stage is skipped"
                   in w for w in result.warnings), result.warnings


def test_full_disk_is_a_warning_and_leaves_no_partial_file(tiny_model, clip_path, tmp_path, monkeypatch):
    def no_space(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"\x00" * 100)  # a partial write, as on a real full disk
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(tensor_files, "save_file", no_space)
    cache = DiskCache(tmp_path / "cache")
    result = Analyzer(tiny_model, whisper="none", disk_cache=cache).score(clip_path, LABELS)
    assert result.modalities == ["audio", "vision"]
    assert any("cannot be used (Error while serializing: I/O error: No space left on device" in w
               for w in result.warnings), result.warnings
    assert list((tmp_path / "cache").iterdir()) == []
