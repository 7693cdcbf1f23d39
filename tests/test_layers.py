"""The stages' layers (.importlinter, docs/design.md) hold, and `lint-imports` would catch an import that breaks them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=folder, capture_output=True, text=True, timeout=120)


def test_the_repository_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("merclip/media/probe.py", "import merclip.reading.analyzer", "import only the stages below them"),
    ("merclip/head/decoder.py", "import merclip.api", "import only the stages below them"),
    ("merclip/reading/batch.py", "import demo.palette", "never imports the app"),
    ("train/metrics.py", "from merclip.reading.analyzer import Analyzer", "by their public names"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, contract):
    for folder in ("merclip", "demo", "train"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout[-2000:]
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in broken and module.removesuffix(".py").replace("/", ".") in broken, result.stdout[-3000:]


def test_docs_design_lists_every_module_under_its_folder():
    """docs/design.md names each module of merclip/, demo/ and train/ with its one job, under its folder."""
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    sections = {}
    for block in design.split("\n`")[1:]:
        folder, _, body = block.partition("`\n")
        sections[folder.rstrip("/")] = body.split("\n\n`")[0]
    for top in ("merclip", "demo", "train"):
        for module in sorted((ROOT / top).rglob("*.py")):
            folder = module.parent.relative_to(ROOT).as_posix()
            assert folder in sections, f"docs/design.md has no section for {folder}/"
            assert f"- `{module.name}`: " in sections[folder], f"docs/design.md does not list {folder}/{module.name}"
