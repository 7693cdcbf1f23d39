"""The README's front matter is a working Hugging Face Space config that preloads the default weights.

Without `preload_from_hub` a Space downloads the default CLIP at every restart. The files
expected here come from the code (the app's defaults and open_clip's own choice of file), so
changing a default without updating the preload list fails this test.
"""

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import faster_whisper
import gradio
import open_clip
import open_clip.pretrained
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from merclip.clip.loader import DEFAULT_CLIP, parse_clip_spec
from merclip.speech.transcribe import DEFAULT_WHISPER

ROOT = Path(__file__).resolve().parent.parent
ZERO_GPU_PYTHONS = {"3.10.13", "3.12.12"}
APP_SOURCES = ("merclip", "demo", "train", "app.py")  # what the Space, the CLI, the bench and training run
OWN_PACKAGES = {"merclip", "demo", "train", "tests", "app"}
# run by a developer from a checkout with requirements-test.txt (it drives Chromium), never by the Space
DEVELOPER_TOOLS = {"demo/screenshots.py"}


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


def _requirements(name: str) -> set[str]:
    """The (canonical) distribution names a requirements file lists."""
    lines = (line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines())
    return {canonicalize_name(Requirement(line).name) for line in lines if line and not line.startswith("-")}


def _installed_with(names: set[str]) -> set[str]:
    """`names` and every distribution pip installs for them (their dependencies, extras left out)."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return found


def _third_party_imports() -> dict[str, str]:
    """Top-level modules imported anywhere in the app's sources (at any depth), outside the standard
    library and this repository: module -> one file that imports it."""
    files = [path for source in APP_SOURCES for path in sorted((ROOT / source).rglob("*.py")) or [ROOT / source]]
    imported = {}
    for path in files:
        if str(path.relative_to(ROOT)) in DEVELOPER_TOOLS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN_PACKAGES:
                    imported.setdefault(top, str(path.relative_to(ROOT)))
    return imported


def test_every_module_the_app_imports_is_installed_by_requirements_txt():
    """The Space installs requirements.txt alone: a package the app, CLI, bench or training imports
    must come with it (listed, or a dependency of one listed), never only with requirements-test.txt."""
    space = _installed_with(_requirements("requirements.txt"))
    providers = importlib.metadata.packages_distributions()
    imported = _third_party_imports()
    assert {"torch", "open_clip", "gradio", "cv2"} <= set(imported), "the scan finds the app's imports"
    for module, where in imported.items():
        distributions = {canonicalize_name(d) for d in providers.get(module, [])}
        assert distributions, f"{where} imports {module}, which no installed package provides"
        assert distributions & space, f"{where} imports {module} ({', '.join(sorted(distributions))}): not installed by requirements.txt"


def test_the_space_installs_no_test_only_package_and_the_test_command_installs_both():
    test_only = _requirements("requirements-test.txt")
    assert {"pytest", "playwright"} <= test_only
    assert not test_only & _installed_with(_requirements("requirements.txt")), "the Space would install them"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = readme.split("<!-- test-command -->\n```bash\n")[1].splitlines()[0]  # the line .ci/run runs
    assert "-r requirements.txt -r requirements-test.txt" in command, command


def test_every_binary_file_in_the_repository_goes_to_git_lfs():
    """The Hub refuses a push of binary files kept outside LFS: .gitattributes must cover each one."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    binary = [name for name in tracked.decode().split("\0") if name and _is_binary(ROOT / name)]
    assert any(name.endswith(".mp4") for name in binary) and any(name.endswith(".png") for name in binary), binary
    attributes = subprocess.run(["git", "check-attr", "filter", "--", *binary], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.splitlines()
    outside = [line for line in attributes if not line.endswith(": filter: lfs")]
    assert not outside, outside


def _is_binary(path: Path) -> bool:
    """A NUL byte, or bytes that are not UTF-8 text."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return b"\0" in data
