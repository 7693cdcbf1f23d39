"""Per-stage honesty (issue 28, item 3): a stage that training never touched is `trained: false` and adds nothing.

A head trained on a video manifest whose clips have no sound and no transcript keeps its audio
adapter, its audio stage and its text stage exactly as initialised. Its checkpoint records the
stages training trained: reached by a batch with their modality, and changed (issue 33: changed
alone counted a stage that weight decay moved); at inference the others are left out (with a warning), so the score of
a clip with a voice and words is the score of the same clip without them.
"""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from merclip import load_model
from merclip.api import build_head, changed_stages
from merclip.commands.cli import main as merclip_main
from merclip.head.checkpoint import CONFIG_FILE, read_checkpoint_config
from tests.synthetic import write_mmsa
from train import train as train_module
from train.learning import TINY, video_features
from train.manifest import load_extracted
from train.planted import VIDEO_CLASSES
from train.resume import STATE_JSON

LABELS = ", ".join(VIDEO_CLASSES)


@pytest.fixture(scope="module")
def silent_videos(tmp_path_factory):
    """Clips of pictures only (no audio track; extracted with --whisper none): vision is all there is."""
    features, _ = video_features(tmp_path_factory.mktemp("silent"), {"train": 8, "valid": 4, "test": 2}, TINY)
    return features


@pytest.fixture(scope="module")
def trained_on_vision(silent_videos, tmp_path_factory):
    """Seed 3 (not the untrained model's 0), stopped after one epoch and resumed: the stages are still told
    apart by comparing with seed 3's initialisation."""
    out = tmp_path_factory.mktemp("run") / "vision-only"
    flags = ["--data", str(silent_videos), "--format", "manifest", "--clip", TINY, "--device", "cpu", "--epochs", "2",
             "--batch-size", "4", "--seed", "3", "--out", str(out), "--no-progress"]
    assert train_module.main(flags + ["--stop-after", "1"]) == 0
    assert train_module.main(flags + ["--resume"]) == 0
    return out


def with_voice_and_words(model, features):
    """The same clip with a voice (acoustic frames) and a transcript added."""
    text = model.encode_transcript("what a wonderful day it was")
    voice = torch.randn(40, model.config.audio_feature_dim, generator=torch.Generator().manual_seed(0))
    return replace(features, audio=voice, audio_times=[i * 0.1 for i in range(40)], text=text.elements,
                   text_pooled=text.pooled, words=text.words)


def test_the_checkpoint_records_the_stages_training_changed(trained_on_vision, silent_videos):
    for folder in (trained_on_vision, trained_on_vision / "last"):
        config = read_checkpoint_config(folder)
        assert config.trained_stages == ("vision",), folder
        assert json.loads((folder / CONFIG_FILE).read_text())["trained_stages"] == ["vision"]
    model = load_model(checkpoint=trained_on_vision, device="cpu")
    assert changed_stages(model.head, seed=3) == ("vision",)
    # the untouched stages are bit-identical to seed 3's fresh head
    fresh = build_head(replace(model.config, trained_stages=None), seed=3).state_dict()
    for name, value in model.head.state_dict().items():
        if name.startswith(("audio_adapter.", "decoder.stages.audio.", "decoder.stages.text.")):
            assert torch.equal(value, fresh[name]), name


def test_an_untouched_stage_is_untrained_and_adds_nothing_to_the_score(trained_on_vision, silent_videos):
    model = load_model(checkpoint=trained_on_vision, device="cpu")
    clip = load_extracted(silent_videos).split("test")[0].features
    assert clip.modalities == ["vision"]
    full = model.score(with_voice_and_words(model, clip), LABELS)
    alone = model.score(clip, LABELS)
    assert full.logits == alone.logits and full.probs == alone.probs, "audio and text must not move the score"
    assert full.modalities == ["vision"]
    stages = {s["modality"]: s["trained"] for s in full.to_dict()["stages"]}
    assert stages == {"text": False, "audio": False, "vision": True}
    assert [s.modality for s in full.stages] == ["text", "audio", "vision"], "in stage order"
    assert not full.stage("audio").attention.any() and full.stage("audio").elements == [i * 0.1 for i in range(40)]
    assert "this model was not trained on audio: its audio stage is left out" in full.warnings
    assert "this model was not trained on text: its text stage is left out" in full.warnings
    assert not any("not trained on" in w for w in alone.warnings)


def test_merclip_predict_marks_the_untouched_stages(trained_on_vision, tmp_path, capsys):
    image = tmp_path / "face.png"
    from skimage.data import astronaut

    Image.fromarray(astronaut()).save(image)
    status = merclip_main(["predict", str(image), "--labels", LABELS, "--checkpoint", str(trained_on_vision),
                           "--device", "cpu", "--transcript", "what a wonderful day", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert status == 0
    assert {s["modality"]: s["trained"] for s in result["stages"]} == {"text": False, "vision": True}
    assert result["modalities"]["used"] == ["vision"]
    assert any("not trained on text" in w for w in result["warnings"])


def test_a_clip_with_only_untouched_modalities_is_refused_clearly(trained_on_vision):
    from merclip.errors import MerClipError

    model = load_model(checkpoint=trained_on_vision, device="cpu")
    voice = model.features(audio=np.zeros((20, model.config.audio_feature_dim), np.float32))
    with pytest.raises(MerClipError, match="not trained on audio"):
        model.score(voice, LABELS)


def test_a_checkpoint_without_the_record_keeps_the_whole_head_flag(trained_on_vision, silent_videos, tmp_path):
    """Checkpoints from before `trained_stages`: every stage of a trained head counts as trained, as before."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.safetensors", CONFIG_FILE):
        (old / name).write_bytes((trained_on_vision / name).read_bytes())
    config = json.loads((old / CONFIG_FILE).read_text())
    del config["trained_stages"]
    (old / CONFIG_FILE).write_text(json.dumps(config))
    model = load_model(checkpoint=old, device="cpu")
    assert model.config.trained_stages is None and model.untrained_stages() == ()
    clip = load_extracted(silent_videos).split("test")[0].features
    full = model.score(with_voice_and_words(model, clip), LABELS)
    assert all(s.trained for s in full.stages) and full.modalities == ["text", "audio", "vision"]


def test_an_untrained_head_is_unchanged_zero_shot(tiny_model, random_audio_features, astronaut):
    """No checkpoint: nothing is left out; the audio stage reads an untrained adapter and says so, as before."""
    features = tiny_model.features(images=[astronaut], transcript="what a day", audio=random_audio_features)
    prediction = tiny_model.score(features, LABELS)
    assert tiny_model.untrained_stages() == ()
    assert {s.modality: s.trained for s in prediction.stages} == {"text": True, "audio": False, "vision": True}
    assert not any("not trained on" in w for w in prediction.warnings)


# --- trained means reached by data with the modality (issue 33) -------------------------------------------------------

def mmsa_flags(data, out, *extra):
    return ["--data", str(data), "--format", "mmsa", "--clip", TINY, "--device", "cpu", "--epochs", "2",
            "--batch-size", "16", "--seed", "0", "--out", str(out), "--no-progress", "--patience", "99", *extra]


def without_audio_frames(monkeypatch):
    """Training reads every sample with an audio tensor of no frames: the audio stage runs with every mask
    False, so it gets a gradient of zeros (not None), which AdamW's weight decay turns into a change."""
    load = train_module.load_data

    def loading(*args, **kwargs):
        data = load(*args, **kwargs)
        for sample in data.samples:
            sample.features.audio, sample.features.audio_times = sample.features.audio[:0], []
        return data

    monkeypatch.setattr(train_module, "load_data", loading)


@pytest.fixture(scope="module")
def mmsa(tmp_path_factory):
    return write_mmsa(tmp_path_factory.mktemp("mmsa") / "mosi_unaligned.pkl")


def test_weight_decay_alone_does_not_make_a_stage_trained(mmsa, tmp_path, monkeypatch):
    out = tmp_path / "no-audio"
    without_audio_frames(monkeypatch)
    assert train_module.main(mmsa_flags(mmsa, out)) == 0
    model = load_model(checkpoint=out, device="cpu")
    assert "audio" in changed_stages(model.head, seed=0), "weight decay moved the audio stage's weights"
    assert model.config.trained_stages == ("text", "vision")
    assert read_checkpoint_config(out / "last").trained_stages == ("text", "vision")
    assert json.loads((out / "last" / STATE_JSON).read_text())["progress"]["reached"] == ["text", "vision"]


@pytest.fixture(scope="module")
def first_epoch(mmsa, tmp_path_factory):
    """Epoch 1 of 2 on the data with its audio frames."""
    out = tmp_path_factory.mktemp("first") / "run"
    assert train_module.main(mmsa_flags(mmsa, out, "--stop-after", "1")) == 0
    return out


def resumed_without_audio(mmsa, first_epoch, folder, monkeypatch, progress=lambda saved: saved):
    """`first_epoch` copied to `folder` (its saved progress through `progress`), resumed on data whose audio
    has no frames; returns the stages its last checkpoint records as trained."""
    shutil.copytree(first_epoch, folder)
    state = folder / "last" / STATE_JSON
    saved = json.loads(state.read_text())
    state.write_text(json.dumps({**saved, "progress": progress(saved["progress"])}))
    without_audio_frames(monkeypatch)
    assert train_module.main(mmsa_flags(mmsa, folder, "--resume")) == 0
    assert len((folder / "log.csv").read_text().splitlines()) == 3, "the header and both epochs"
    return read_checkpoint_config(folder / "last").trained_stages


def test_a_resumed_run_keeps_the_stages_its_earlier_epochs_reached(mmsa, first_epoch, tmp_path, monkeypatch):
    """Only epoch 1 had audio frames: the saved record keeps the audio stage trained."""
    assert resumed_without_audio(mmsa, first_epoch, tmp_path / "run", monkeypatch) == ("text", "audio", "vision")


def test_a_run_begun_before_the_record_resumes_with_the_weights_alone_deciding(mmsa, first_epoch, tmp_path,
                                                                             monkeypatch):
    """A progress saved before `reached` existed does not know its earlier batches: every changed stage counts
    (as then), not none of those the resumed epochs miss."""
    def older(saved):
        return {k: v for k, v in saved.items() if k != "reached"}

    assert resumed_without_audio(mmsa, first_epoch, tmp_path / "run", monkeypatch, older) == ("text", "audio", "vision")
