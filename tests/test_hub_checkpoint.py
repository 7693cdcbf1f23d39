"""`--checkpoint hf-hub:ORG/NAME` reads a head from the Hugging Face cache (built here, offline)."""

import json
import shutil
import time

import pytest
import torch

from merclip import MerClipError, load_model
from merclip.api import MerClip, build_head
from merclip.commands.cli import main as merclip_main
from merclip.head.checkpoint import CONFIG_FILE, WEIGHTS_FILE

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LABELS = "pleased, upset, furious"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, offline: huggingface_hub reads both at call time."""
    import huggingface_hub.constants as constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def publish(cache, folder, repo="merclip-org/tiny-head"):
    """Lay out `folder`'s checkpoint as huggingface_hub caches a download of `repo` at `main`."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        shutil.copy(folder / name, snapshot / name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(COMMIT)


def test_a_cached_hub_checkpoint_loads_offline_and_predicts_like_the_folder(tiny_model, hub_cache, tmp_path):
    head = build_head(tiny_model.config)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
    MerClip(tiny_model.clip, head).save(tmp_path / "run")
    publish(hub_cache, tmp_path / "run")
    features = tiny_model.features(transcript="that is not what I ordered")
    local = load_model(checkpoint=tmp_path / "run", device="cpu").score(features, LABELS)
    for name in ("hf-hub:merclip-org/tiny-head", f"hf-hub:merclip-org/tiny-head@{COMMIT}"):
        loaded = load_model(checkpoint=name, device="cpu")
        assert loaded.score(features, LABELS).logits == local.logits


def test_an_uncached_hub_checkpoint_offline_is_one_clear_line_at_once(hub_cache, astronaut, tmp_path, capsys):
    started = time.perf_counter()
    with pytest.raises(MerClipError, match="not in the local Hugging Face cache, and the hub is offline") as error:
        load_model(checkpoint="hf-hub:merclip-org/absent", device="cpu")
    assert time.perf_counter() - started < 10, "offline must not wait for the network"
    assert "\n" not in str(error.value)
    astronaut.save(tmp_path / "face.png")
    assert merclip_main(["predict", str(tmp_path / "face.png"), "--labels", LABELS, "--checkpoint",
                         "hf-hub:merclip-org/absent", "--device", "cpu"]) == 2
    assert "hf-hub:merclip-org/absent" in capsys.readouterr().err


def test_a_malformed_hub_name_is_a_clear_error(hub_cache):
    with pytest.raises(MerClipError, match="not a repository name"):
        load_model(checkpoint="hf-hub:not a/repo name", device="cpu")


def test_merclip_predict_reads_a_cached_hub_checkpoint(tiny_model, hub_cache, astronaut, tmp_path, capsys):
    MerClip(tiny_model.clip, build_head(tiny_model.config)).save(tmp_path / "run")
    publish(hub_cache, tmp_path / "run")
    astronaut.save(tmp_path / "face.png")
    out = tmp_path / "records.jsonl"
    assert merclip_main(["predict", str(tmp_path / "face.png"), "--labels", LABELS, "--checkpoint",
                         "hf-hub:merclip-org/tiny-head", "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
    record = json.loads(out.read_text().splitlines()[0])
    assert record["settings"]["checkpoint"] == "hf-hub:merclip-org/tiny-head"


@pytest.mark.parametrize("field, value", [("mlp_ratio", float("nan")), ("audio_feature_dim", 12)])
def test_a_hostile_hub_checkpoint_is_one_line_naming_the_field(tiny_model, hub_cache, astronaut, tmp_path, capsys,
                                                               field, value):
    """The same checks as a local folder's: a NaN (refused in the config) and a width the weights contradict
    (read from the cached file's header)."""
    MerClip(tiny_model.clip, build_head(tiny_model.config)).save(tmp_path / "run")
    config = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    (tmp_path / "run" / CONFIG_FILE).write_text(json.dumps({**config, field: value}))
    publish(hub_cache, tmp_path / "run")
    with pytest.raises(MerClipError, match=field):
        load_model(checkpoint="hf-hub:merclip-org/tiny-head", device="cpu")
    astronaut.save(tmp_path / "face.png")
    assert merclip_main(["predict", str(tmp_path / "face.png"), "--labels", LABELS, "--checkpoint",
                         "hf-hub:merclip-org/tiny-head", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and field in err, err
