"""Checkpoints: safetensors + JSON config round trip, and clear errors for bad ones."""

import json

import pytest
import torch

from merclip import MerClipError, load_model
from merclip.api import MerClip, build_head
from merclip.checkpoint import CONFIG_FILE, WEIGHTS_FILE

LABELS = "pleased, upset, furious"
TINY = "merclip-tiny:random"


@pytest.fixture
def trained(tiny_model):
    """A tiny model whose head weights differ from the untrained ones."""
    head = build_head(tiny_model.config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return MerClip(tiny_model.clip, head)


@pytest.fixture
def features(tiny_model, faces, random_audio_features):
    return tiny_model.features(images=faces[:3], transcript="that is not what I ordered", audio=random_audio_features)


def test_stages_read_through_untrained_adapters_are_marked_untrained(trained, tiny_model, features):
    zero_shot = {s["modality"]: s["trained"] for s in tiny_model.predict(features, LABELS).to_dict()["stages"]}
    assert zero_shot == {"text": True, "audio": False, "vision": True}, "CLIP's own features need no training"
    assert all(s["trained"] for s in trained.predict(features, LABELS).to_dict()["stages"])


def test_round_trip_gives_identical_outputs(trained, features, tmp_path):
    trained.save(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded = load_model(checkpoint=tmp_path / "run", device="cpu")
    before, after = trained.predict(features, LABELS), loaded.predict(features, LABELS)
    assert before.logits == after.logits
    assert all((a.attention == b.attention).all() for a, b in zip(before.stages, after.stages))
    assert before.contributions["decoder"] != [0.0, 0.0, 0.0]  # the trained decoder term is in play
    assert loaded.config.to_dict() == trained.config.to_dict()


def test_config_holds_everything_needed_to_rebuild(trained, tmp_path):
    trained.save(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert config["clip"] == "merclip-tiny:random"
    assert config["stage_order"] == ["text", "audio", "vision"]
    assert set(config["templates"]) == {"text", "audio", "vision"}
    assert config["embed_dim"] == 128


def test_corrupt_weights_are_a_clear_error(trained, tmp_path):
    trained.save(tmp_path)
    weights = tmp_path / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(MerClipError, match="corrupt or not safetensors"):
        load_model(checkpoint=tmp_path, device="cpu")


def test_pickle_instead_of_safetensors_is_refused(trained, tmp_path):
    trained.save(tmp_path)
    torch.save(trained.head.state_dict(), tmp_path / WEIGHTS_FILE)
    with pytest.raises(MerClipError, match="corrupt or not safetensors"):
        load_model(checkpoint=tmp_path, device="cpu")


def test_config_that_does_not_match_the_weights_is_a_clear_error(trained, tmp_path):
    trained.save(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["audio_feature_dim"] = 12
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(MerClipError, match="does not match its architecture: .*audio_adapter"):
        load_model(checkpoint=tmp_path, device="cpu")


def test_checkpoint_for_another_clip_size_is_a_clear_error(trained, tmp_path):
    trained.save(tmp_path)
    with pytest.raises(MerClipError, match="128-dim CLIP"):
        load_model("RN50:random", checkpoint=tmp_path, device="cpu")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda path: (path / CONFIG_FILE).write_text("{not json"), "not valid JSON"),
        (lambda path: (path / CONFIG_FILE).write_text('{"format": "other"}'), "not a MER-CLIP config"),
        (lambda path: (path / CONFIG_FILE).write_text('{"format": "merclip/1", "layers": 3}'), "unknown keys: layers"),
        (lambda path: (path / CONFIG_FILE).write_text('{"format": "merclip/1", "stage_order": ["smell"]}'),
         "expected distinct modalities"),
        (lambda path: (path / CONFIG_FILE).write_text('{"format": "merclip/1", "interaction_features": 256.0}'),
         "interaction_features must be a whole number"),
        (lambda path: (path / WEIGHTS_FILE).unlink(), "has no model.safetensors"),
    ],
)
def test_broken_checkpoint_folders_are_clear_errors(trained, tmp_path, change, message):
    trained.save(tmp_path)
    change(tmp_path)
    with pytest.raises(MerClipError, match=message):
        load_model(checkpoint=tmp_path, device="cpu")


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(MerClipError, match="checkpoint not found"):
        load_model(checkpoint=tmp_path / "nowhere", device="cpu")


def test_a_clip_id_names_the_checkpoint_that_scored_it(trained, astronaut, tmp_path):
    """The same picture analysed with and without a checkpoint gets two clip_ids, and the page's
    re-score (ModelStore.find) uses the head that made the clip_id."""
    from demo.models import ModelChoice, ModelStore

    trained.save(tmp_path / "ck")
    astronaut.save(tmp_path / "face.png")
    store = ModelStore(ModelChoice(TINY, "none"), device="cpu", checkpoints={"ck": str(tmp_path / "ck")})
    untrained = store.analyzer(ModelChoice(TINY, "none")).predict(tmp_path / "face.png", "happy, sad, calm")
    checkpoint = store.analyzer(ModelChoice(TINY, "none", "ck")).predict(tmp_path / "face.png", "happy, sad, calm")
    assert untrained.clip_id != checkpoint.clip_id
    assert not torch.allclose(torch.tensor(untrained.probs), torch.tensor(checkpoint.probs), atol=1e-3)
    again = store.find(checkpoint.clip_id).analyzer.rescore(checkpoint.clip_id, "happy, sad, calm")
    assert again.probs == pytest.approx(checkpoint.probs, abs=1e-6)


def test_replacing_a_local_clip_weights_file_changes_the_model_name(tmp_path):
    """Analyses cached on disk under the old weights must not be found for the new ones."""
    import os

    from safetensors.torch import save_file

    path = tmp_path / "clip.safetensors"
    weights = load_model(TINY, device="cpu").clip.model.state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path))
    before = load_model(f"merclip-tiny:{path}", device="cpu").fingerprint
    assert load_model(f"merclip-tiny:{path}", device="cpu").fingerprint == before, "the same file, the same name"
    save_file({k: v.contiguous() * 1.01 for k, v in weights.items()}, str(path))
    os.utime(path, ns=(1, 10**18))
    assert load_model(f"merclip-tiny:{path}", device="cpu").fingerprint != before
