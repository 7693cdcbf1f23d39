"""The optional disk cache: a new process reuses an analysis; broken folders and entries never break a run."""

import json

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

import merclip.api
from merclip.api import MerClip, build_head
from merclip.clip.loader import load_clip
from merclip.commands.cli import main
from merclip.media.sample_media import speech_clip
from merclip.reading import analyzer as analysis_module
from merclip.reading.analyzer import AnalysisOptions, Analyzer
from merclip.reading.disk_cache import DiskCache

LABELS = "happy, sad, angry"
OVERRIDE = AnalysisOptions(transcript="that was a lovely surprise")


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("disk") / "clip.mp4", seconds=3)


def test_a_fresh_analyzer_reuses_the_analysis_from_disk(tiny_model, clip_path, tmp_path, monkeypatch):
    first, cached = Analyzer(tiny_model, whisper="none", disk_cache=DiskCache(tmp_path)).analyse(clip_path, OVERRIDE)
    assert not cached and len(DiskCache(tmp_path).entries()) == 1

    calls = []
    monkeypatch.setattr(analysis_module, "sample_frames", lambda *a, **k: calls.append("decode"))
    monkeypatch.setattr(analysis_module, "audio_frame_features", lambda *a, **k: calls.append("audio"))
    second, cached = Analyzer(tiny_model, whisper="none", disk_cache=DiskCache(tmp_path)).analyse(clip_path, OVERRIDE)
    assert cached and calls == []
    for name in ("vision", "text", "text_pooled", "audio"):
        assert torch.equal(getattr(first.features, name), getattr(second.features, name)), name
    assert second.features.words == first.features.words
    assert second.features.frame_times == first.features.frame_times
    assert all(np.array_equal(a, b) for a, b in zip(first.crops, second.crops)) and len(second.crops) == 8
    assert second.faces == first.faces and second.face_detection == first.face_detection
    assert any(face is not None for face in first.faces), "boxes and scores make the round trip"
    assert second.transcript.to_dict() == first.transcript.to_dict()


def test_a_corrupt_entry_is_recomputed_and_replaced(tiny_model, clip_path, tmp_path):
    cache = DiskCache(tmp_path)
    Analyzer(tiny_model, whisper="none", disk_cache=cache).analyse(clip_path, OVERRIDE)
    entry = cache.entries()[0]
    entry.write_bytes(entry.read_bytes()[:200])
    analysis, cached = Analyzer(tiny_model, whisper="none", disk_cache=cache).analyse(clip_path, OVERRIDE)
    assert not cached and analysis.features.vision is not None
    _, cached = Analyzer(tiny_model, whisper="none", disk_cache=cache).analyse(clip_path, OVERRIDE)
    assert cached, "the recomputed analysis must have been written back"


def test_an_unusable_folder_is_a_warning_not_a_failure(tiny_model, clip_path, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    result = Analyzer(tiny_model, whisper="none", disk_cache=DiskCache(blocker)).score(clip_path, LABELS, options=OVERRIDE)
    assert result.modalities == ["text", "audio", "vision"]
    assert any("disk cache folder" in w for w in result.warnings)


def test_the_folder_keeps_at_most_max_entries(tiny_model, tmp_path):
    cache = DiskCache(tmp_path / "cache", max_entries=2)
    analyzer = Analyzer(tiny_model, whisper="none", disk_cache=cache)
    for i in range(4):
        Image.fromarray(np.full((32, 32, 3), i * 40, np.uint8)).save(tmp_path / f"{i}.png")
        analyzer.analyse(tmp_path / f"{i}.png")
    assert len(cache.entries()) == 2
    assert not list(cache.folder.glob("*.partial"))


def test_cli_second_run_comes_from_the_cache_folder(clip_path, tmp_path, capsys):
    args = ["predict", str(clip_path), "--labels", LABELS, "--json", "--clip", "merclip-tiny:random",
            "--whisper", "none", "--transcript", "so happy", "--cache-dir", str(tmp_path)]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert "clip_image" in first["timings_ms"] and "clip_image" not in second["timings_ms"]
    assert "cache_lookup" in second["timings_ms"]
    assert second["probs"] == pytest.approx(first["probs"], abs=1e-6)


class OnGpu(MerClip):
    """The same model as if placed on a GPU in fp32 (only where it reads its device: no GPU is needed here)."""

    device = torch.device("cuda")


def other(component, tiny_model, cache, monkeypatch):
    """An analyzer on `cache` that differs from the default one (the tiny model, no Whisper) in one thing only."""
    model, whisper = tiny_model, "none"
    if component == "precision":
        model = MerClip(load_clip("merclip-tiny:random", "cpu", precision="fp16"), tiny_model.head)
    elif component == "device kind":
        model = OnGpu(tiny_model.clip, tiny_model.head)
    elif component == "features version":
        monkeypatch.setattr(merclip.api, "FEATURES_VERSION", merclip.api.FEATURES_VERSION + 1)
        model = MerClip(tiny_model.clip, tiny_model.head)
    elif component == "open_clip version":
        monkeypatch.setattr(open_clip, "__version__", open_clip.__version__ + ".post1")
    elif component == "head weights":
        model = MerClip(tiny_model.clip, build_head(tiny_model.config, seed=1))
    else:
        assert component == "speech recogniser"
        whisper = "bundled"
    return Analyzer(model, whisper=whisper, disk_cache=cache)


@pytest.mark.parametrize("component", ["precision", "device kind", "features version", "open_clip version",
                                       "head weights", "speech recogniser"])
def test_an_analysis_is_not_served_to_a_run_that_computes_features_otherwise(component, tiny_model, tmp_path,
                                                                           monkeypatch):
    image = tmp_path / "face.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(image)
    cache = DiskCache(tmp_path / "cache")
    Analyzer(tiny_model, whisper="none", disk_cache=cache).analyse(image)
    same = Analyzer(tiny_model, whisper="none", disk_cache=cache)
    assert same._lookup(image, AnalysisOptions()).analysis is not None, "the same: a hit"
    changed = other(component, tiny_model, cache, monkeypatch)
    assert changed._lookup(image, AnalysisOptions()).analysis is None, f"other {component}: a miss"
