"""CLIP SPEC parsing, seeded random weights, local files and offline behaviour."""

import socket

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from merclip import MerClipError
from merclip.clip.loader import load_clip, parse_clip_spec, resolve_device
from merclip.host.hub import hub_reachable


@pytest.mark.parametrize(
    "spec, source, arch",
    [
        ("ViT-B-32:openai", "tag", "ViT-B-32"),
        ("ViT-B-32:random", "random", "ViT-B-32"),
        ("merclip-tiny:random", "random", "merclip-tiny"),
        ("ViT-B-32:/models/clip.safetensors", "file", "ViT-B-32"),
        ("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "hub", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"),
    ],
)
def test_spec_forms_are_recognised(spec, source, arch):
    parsed = parse_clip_spec(spec)
    assert (parsed.source, parsed.arch) == (source, arch)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ViT-B-32", "expected ARCH:WEIGHTS"),
        ("ViT-B-33:random", "did you mean"),
        ("ViT-B-32:not-a-tag", "neither a file nor a pretrained tag"),
        ("hf-hub:just-a-name", "hf-hub:ORG/NAME"),
    ],
)
def test_bad_specs_are_clear_errors(spec, message):
    with pytest.raises(MerClipError, match=message):
        parse_clip_spec(spec)


def test_random_weights_are_seeded_like_the_design_says_and_leave_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    bundle = load_clip("merclip-tiny:random", device="cpu")
    assert torch.equal(torch.rand(3), expected_next), "loading must not consume the caller's random numbers"

    torch.manual_seed(0)
    reference, _, _ = open_clip.create_model_and_transforms("merclip-tiny", pretrained=None)
    for (name, ours), (_, theirs) in zip(bundle.model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(ours, theirs), name
    assert not any(p.requires_grad for p in bundle.model.parameters())
    assert bundle.embed_dim == 128 and bundle.context_length == 32


def test_offline_tag_fails_with_advice():
    with pytest.raises(MerClipError) as error:
        load_clip("ViT-B-32:openai", device="cpu")
    message = str(error.value)
    assert "'ViT-B-32:openai'" in message and "offline" in message
    assert "--clip ViT-B-32:random" in message and "\n" not in message
    assert "ViT-B-32-quickgelu:/path" in message, "a local file of OpenAI's weights needs the QuickGELU architecture"


def test_unreachable_hub_switches_to_cache_only_and_restores_the_setting(monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("merclip.host.hub.hub_reachable", lambda endpoint: False)
    with pytest.raises(MerClipError, match="cannot be reached"):
        load_clip("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", device="cpu")
    assert hub_constants.HF_HUB_OFFLINE is False


def test_hub_probe_reports_a_closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert hub_reachable(f"http://127.0.0.1:{port}") is False


def test_local_weights_file_is_loaded(tmp_path):
    torch.manual_seed(7)
    trained, _, _ = open_clip.create_model_and_transforms("merclip-tiny", pretrained=None)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(path))
    bundle = load_clip(f"merclip-tiny:{path}", device="cpu")
    assert torch.equal(bundle.model.visual.conv1.weight, trained.visual.conv1.weight)
    assert not bundle.random_weights


def test_missing_and_mismatched_weight_files_are_clear_errors(tmp_path):
    with pytest.raises(MerClipError, match="not found"):
        load_clip(f"merclip-tiny:{tmp_path / 'absent.safetensors'}", device="cpu")
    tiny = load_clip("merclip-tiny:random", device="cpu")
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, str(path))
    with pytest.raises(MerClipError, match="could not be loaded as RN50"):
        load_clip(f"RN50:{path}", device="cpu")


def test_device_choice():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(MerClipError, match="expected auto, cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(MerClipError, match="no CUDA GPU"):
            resolve_device("cuda")
