"""CLIP is built as its weights were trained: the pretrained tag's config decides GELU or QuickGELU.

OpenAI's CLIP (and some LAION runs) were trained with QuickGELU; building them with GELU still
loads (same parameters) but shifts every activation. The weights cannot be downloaded here, so
only open_clip's download and checkpoint loading are stood in for: everything else is the real
`load_clip` path, including open_clip's own mismatch check.
"""

import warnings

import open_clip
import pytest
from open_clip.transformer import QuickGELU
from torch import nn

from merclip.clip.loader import DEFAULT_CLIP, load_clip

TAG_SPECS = [
    f"{arch}:{tag}"
    for arch in ("ViT-B-32", "ViT-B-16")
    for tag in open_clip.list_pretrained_tags_by_model(arch)
    if tag == "openai" or tag.startswith("laion")
]


def _assert_built_as_trained(spec, tmp_path, monkeypatch):
    arch, tag = spec.split(":")
    tag_cfg = open_clip.get_pretrained_cfg(arch, tag)
    asked = []
    weights = tmp_path / "weights.safetensors"
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda cfg, **_: asked.append(cfg) or str(weights))
    monkeypatch.setattr(open_clip.factory, "load_checkpoint", lambda model, path, **_: asked.append(path))

    # open_clip reports the mismatch with warnings.warn, not logging (which load_clip quiets anyway)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_clip(spec, "cpu").model

    assert asked == [tag_cfg, str(weights)], "the tag's weights must be what open_clip was asked to load"
    expected = QuickGELU if tag_cfg.get("quick_gelu") else nn.GELU
    for name, tower in (("image", model.visual.transformer), ("text", model.transformer)):
        built = {type(m).__name__ for m in tower.modules() if isinstance(m, (nn.GELU, QuickGELU))}
        assert built == {expected.__name__}, f"{spec} {name} tower built with {built}, trained with {expected.__name__}"
    assert not [str(w.message) for w in caught if "QuickGELU mismatch" in str(w.message)]


def test_default_clip_is_built_as_its_weights_were_trained(tmp_path, monkeypatch):
    _assert_built_as_trained(DEFAULT_CLIP, tmp_path, monkeypatch)


@pytest.mark.slow  # ~2.5 s a build: ~22 s for all of them on two shared cores
@pytest.mark.parametrize("spec", [spec for spec in TAG_SPECS if spec != DEFAULT_CLIP])
def test_openai_and_laion_tags_follow_their_pretrained_config(spec, tmp_path, monkeypatch):
    _assert_built_as_trained(spec, tmp_path, monkeypatch)
