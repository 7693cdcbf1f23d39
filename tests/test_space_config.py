"""The README's front matter is a working Hugging Face Space config that preloads the default weights.

Without `preload_from_hub` a Space downloads the default CLIP at every restart. The files
expected here come from the code (the app's defaults and open_clip's own choice of file), so
changing a default without updating the preload list fails this test.
"""

from pathlib import Path

import faster_whisper
import gradio
import open_clip
import open_clip.pretrained
import pytest
import yaml

from merclip.clip_loader import DEFAULT_CLIP, parse_clip_spec
from merclip.transcribe import DEFAULT_WHISPER

ROOT = Path(__file__).resolve().parent.parent
ZERO_GPU_PYTHONS = {"3.10.13", "3.12.12"}


@pytest.fixture(scope="module")
def space_config() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "a Space reads its config from front matter at the very top of README.md"
    front_matter, end, _ = text[len("---\n"):].partition("\n---\n")
    assert end, "front matter is not closed by ---"
    return yaml.safe_load(front_matter)


def _preloaded(config: dict) -> dict[str, set[str]]:
    """`REPO FILE1,FILE2 [COMMIT]` entries as repo -> files (an entry without files preloads the whole repo)."""
    entries = {}
    for entry in config.get("preload_from_hub") or []:
        repo, *rest = entry.split()
        entries.setdefault(repo, set()).update(rest[0].split(",") if rest else {"*"})
    return entries


def _hub_files_open_clip_fetches(spec: str, monkeypatch) -> list[tuple[str, str]]:
    """Ask open_clip's own download code which hub file it fetches first for a tag (nothing is downloaded)."""
    parsed = parse_clip_spec(spec)
    asked = []
    monkeypatch.setattr(open_clip.pretrained, "hf_hub_download",
                        lambda repo_id, filename, **_: asked.append((repo_id, filename)) or filename)
    open_clip.download_pretrained(open_clip.get_pretrained_cfg(parsed.arch, parsed.weights))
    return asked


def test_default_clip_weights_are_preloaded(space_config, monkeypatch):
    assert parse_clip_spec(DEFAULT_CLIP).source == "tag", "a non-tag default CLIP needs its own preload rule here"
    wanted = _hub_files_open_clip_fetches(DEFAULT_CLIP, monkeypatch)
    assert wanted, f"{DEFAULT_CLIP}: open_clip fetched nothing from the hub"
    preloaded = _preloaded(space_config)
    for repo, filename in wanted:
        assert preloaded.get(repo, set()) & {filename, "*"}, (
            f"preload_from_hub lacks '{repo} {filename}' ({DEFAULT_CLIP}); it has {sorted(preloaded)}"
        )


def test_default_whisper_needs_no_hub():
    """CLIP is the only hub download at start-up: Whisper `bundled` and MTCNN's weights ship in pip packages."""
    assert DEFAULT_WHISPER not in faster_whisper.available_models(), "a hub Whisper default needs a preload entry"


def test_space_keys_match_the_installed_app(space_config):
    assert space_config["sdk"] == "gradio"
    assert space_config["sdk_version"] == gradio.__version__
    assert (ROOT / space_config["app_file"]).is_file()
    assert str(space_config["python_version"]) in ZERO_GPU_PYTHONS
    assert space_config["title"]
