"""Checkpoints: safetensors + JSON config round trip, and clear errors for bad ones."""

import json

import pytest
import torch

from merclip import MerClipError, load_model
from merclip.api import MerClip, build_head
from merclip.commands.cli import main as merclip_main
from merclip.head.checkpoint import CONFIG_FILE, WEIGHTS_FILE

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
    zero_shot = {s["modality"]: s["trained"] for s in tiny_model.score(features, LABELS).to_dict()["stages"]}
    assert zero_shot == {"text": True, "audio": False, "vision": True}, "CLIP's own features need no training"
    assert all(s["trained"] for s in trained.score(features, LABELS).to_dict()["stages"])


def test_round_trip_gives_identical_outputs(trained, features, tmp_path):
    trained.save(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded = load_model(checkpoint=tmp_path / "run", device="cpu")
    before, after = trained.score(features, LABELS), loaded.score(features, LABELS)
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
    with pytest.raises(MerClipError, match="audio_feature_dim .*audio_adapter"):
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
    from demo.model_store import ModelChoice, ModelStore

    trained.save(tmp_path / "ck")
    astronaut.save(tmp_path / "face.png")
    store = ModelStore(ModelChoice(TINY, "none"), device="cpu", checkpoints={"ck": str(tmp_path / "ck")})
    untrained = store.analyzer(ModelChoice(TINY, "none")).score(tmp_path / "face.png", "happy, sad, calm")
    checkpoint = store.analyzer(ModelChoice(TINY, "none", "ck")).score(tmp_path / "face.png", "happy, sad, calm")
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


HUGE = 10_000_000  # 5 GB of float32 for a 128-wide layer reading that many features


def hostile(folder, **fields):
    """`folder`'s checkpoint with these config.json fields (NaN and infinities written as Python's json does)."""
    config = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**config, **fields}))
    return folder


def predict_error(capsys, astronaut, folder):
    """`merclip predict --json --checkpoint folder` on a real face: exit 2, one line on stderr, and how much the
    process's peak memory grew meanwhile (the refusal must come before any allocation the config sizes)."""
    import resource

    astronaut.save(folder.parent / "face.png")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    status = merclip_main(["predict", str(folder.parent / "face.png"), "--labels", LABELS, "--json",
                           "--checkpoint", str(folder), "--device", "cpu"])
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and err.count("\n") == 1 and err.startswith("merclip: error: "), err
    return err, grown_mb


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("field, value", [
    *[(dim, bad) for dim in ("embed_dim", "audio_feature_dim", "vision_feature_dim", "interaction_features")
      for bad in (HUGE, -1, NAN, 1e39, "128", True, 128.5)],
    ("embed_dim", 0), ("audio_feature_dim", 0), ("vision_feature_dim", 0),
    *[("mlp_ratio", bad) for bad in (NAN, INF, -2.0, 0, 1e9, "2", True)],
    *[("attention_temperature", bad) for bad in (NAN, INF, -1.0, 0, 1e39, "14", True)],
    *[("prior_weights", bad) for bad in ({"vision": 1e39}, {"vision": NAN}, {"text": -1}, {"vision": "0.7"},
                                         {"text": True}, "heavy", [0.7, 0.3])],
    *[("stage_order", bad) for bad in ("text", 5, ["text", "text"], [1], [])],
    *[("trained_stages", bad) for bad in ("text", [5], ["smell"])],
    *[("templates", bad) for bad in ("a {} face", {"text": 5}, {"text": [5]}, {"text": ["no slot"]})],
    ("clip", 5), ("clip", ""), ("attention", "no"), ("attention", 1),
    # within the limits, yet not what the weights were trained with: read from the file's header
    ("embed_dim", 256), ("audio_feature_dim", 12), ("vision_feature_dim", 35), ("interaction_features", 64),
    ("interaction_features", 0), ("mlp_ratio", 3.0), ("stage_order", ["text", "vision"]),
])
def test_every_hostile_config_field_is_one_line_naming_it_before_any_allocation(
        trained, astronaut, tmp_path, capsys, field, value):
    trained.save(tmp_path / "ck")
    err, grown_mb = predict_error(capsys, astronaut, hostile(tmp_path / "ck", **{field: value}))
    assert field in err
    assert grown_mb < 256, f"peak memory grew {grown_mb:.0f} MB before the refusal"


def hostile_weights(folder, name, value, dtype=torch.float32):
    """`folder`'s checkpoint with weight `name` filled with `value`, stored as `dtype`."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / WEIGHTS_FILE))
    state[name] = torch.full_like(state[name], value, dtype=dtype)
    save_file(state, str(folder / WEIGHTS_FILE))
    return folder


@pytest.mark.parametrize("name, value, dtype", [
    ("readout.weight", NAN, torch.float32),
    ("audio_adapter.0.weight", -INF, torch.float32),
    ("interaction.weight", 1e39, torch.float64),  # finite in float64, inf in the head's float32
    ("decoder.stages.vision.mlp.2.weight", 2e4, torch.float32),  # finite, but large enough to overflow
    ("decoder.stages.text.log_tau", 100.0, torch.float32),  # tau = e^100 is inf in float32
    ("evidence_mean", INF, torch.float16),
    ("mean_updates", -1.0, torch.float32),
    ("readout.bias", 1, torch.int64),
])
def test_non_finite_or_overflowing_weights_are_one_line_naming_the_tensor(
        trained, astronaut, tmp_path, capsys, name, value, dtype):
    trained.save(tmp_path / "ck")
    err, _ = predict_error(capsys, astronaut, hostile_weights(tmp_path / "ck", name, value, dtype))
    assert name in err


def test_the_largest_weights_a_checkpoint_may_hold_keep_a_full_size_head_finite():
    """Every weight at +-MAX_WEIGHT (all the same sign: the worst case) and every temperature at its
    largest: a 512-dim head (ViT-B's) still scores finite numbers, so refusing beyond them is enough."""
    import math

    from merclip.head.checkpoint import MAX_WEIGHT
    from merclip.head.config import MAX_TEMPERATURE, ModelConfig
    from merclip.head.inputs import ModalityInput

    head = build_head(ModelConfig(embed_dim=512, audio_feature_dim=20)).eval()
    with torch.no_grad():
        for name, parameter in head.named_parameters():
            parameter.fill_(math.log(MAX_TEMPERATURE) if name.endswith("log_tau") else MAX_WEIGHT)
    generator = torch.Generator().manual_seed(0)
    unit = lambda *shape: torch.nn.functional.normalize(torch.rand(*shape, generator=generator), dim=-1)  # noqa: E731
    inputs = {m: ModalityInput(unit(2, 5, 20 if m == "audio" else 512), torch.ones(2, 5, dtype=torch.bool))
              for m in ("text", "audio", "vision")}
    with torch.no_grad():
        out = head(inputs, {m: unit(3, 512) for m in inputs}, logit_scale=100.0)
    assert torch.isfinite(out.logits).all() and out.logits.abs().max() > 1e20, "the worst case is exercised"


def test_a_hostile_checkpoint_is_shown_in_the_page_not_a_traceback(trained, tmp_path):
    """`app.py --checkpoint` hands the folder to the page's ModelStore: the field's one line is its status."""
    from demo.model_store import ModelChoice, ModelStore

    trained.save(tmp_path / "ck")
    hostile(tmp_path / "ck", attention_temperature=-1.0)
    default = ModelChoice(TINY, "none", "ck")
    store = ModelStore(default, device="cpu", checkpoints={"ck": str(tmp_path / "ck")})
    with pytest.raises(MerClipError, match="attention_temperature"):
        store.analyzer(default)
    status = store.status_markdown()
    assert "attention_temperature must be a number above 0" in status and "Traceback" not in status


def test_json_output_is_strict_json_with_non_finite_numbers_as_null(tiny_model, astronaut, tmp_path, capsys,
                                                                     monkeypatch):
    """Whatever a result holds, --json prints what strict readers accept: a NaN is null, and `non_finite`
    says where."""
    from merclip.head.result import Prediction

    real = Prediction.to_dict
    monkeypatch.setattr(Prediction, "to_dict", lambda self: {**real(self), "sentiment": NAN,
                                                             "probs": [INF, *real(self)["probs"][1:]]})
    astronaut.save(tmp_path / "face.png")
    assert merclip_main(["predict", str(tmp_path / "face.png"), "--labels", LABELS, "--json", "--clip", TINY,
                         "--device", "cpu", "--whisper", "none"]) == 0

    def refuse(constant):
        raise ValueError(f"bare {constant} in the output")

    result = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert result["sentiment"] is None and result["probs"][0] is None and result["probs"][1] is not None
    assert result["non_finite"] == ["probs[0]", "sentiment"]
