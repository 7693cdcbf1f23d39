"""The README and docs/ show only commands, flags and Python that exist, and every page is reachable.

- Shell commands (fenced `bash`/`sh` blocks, and `python ...`, `torchrun ...`, `merclip <sub> ...`
  and `train.<x> ...` spans in the text): each names an entry point whose `--help` exits 0, and
  every `--flag` shown for it appears in that help; files given to `pip install -r` and to pytest
  exist. Each distinct entry point's `--help` runs once (the modules in one process, so torch is
  imported once; each script in a process of its own, beside it).
- Python blocks compile, their imports resolve, and the blocks that load a model run with the
  tiny random model on small generated media.
- The README stays a front door (at most 200 lines) that links every page of docs/, the index
  (docs/README.md) links every page, and every link between them lands on a file and a heading.

A command or flag a page invents fails here; so does one that the code renames.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import merclip
from merclip.media.sample_media import speech_clip

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))
DOC_FILES = [README, *PAGES]
MAX_README_LINES = 200

SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
OPERATORS = {"&&", "||", ";", "|", "&"}
REDIRECTS = {">", ">>", "<", "2>", "&>"}
# Programs the docs show that are not this project's: their flags are their own business.
OTHER_PROGRAMS = {"hf", "cat", "head", "tail", "ls", "sha256sum", "apt-get", "git", "export", "cd"}
FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)")
INLINE_COMMAND = re.compile(r"^(?:[A-Z_]+=\S+ )*(?:python[\d.]* |\.venv/bin/python |torchrun |pytest |merclip \w|train\.(?!py\b)\w+(?: |$))")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@dataclass(frozen=True)
class Entry:
    """A program of this project: `module` (run as `python -m`) or `script` (a file), and for
    `python -m merclip` its subcommand."""

    kind: str
    name: str
    sub: str | None = None

    def argv(self) -> list[str]:
        return [self.name, *([self.sub] if self.sub else []), "--help"]

    def __str__(self) -> str:
        shown = f"python -m {self.name}" if self.kind == "module" else f"python {self.name}"
        return f"{shown} {self.sub}" if self.sub else shown


@dataclass(frozen=True)
class Command:
    where: str  # file:line
    text: str
    entry: Entry | None = None
    flags: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # paths that must exist (requirements files, test files)


def _fenced(text: str):
    """(language, first line number, body) of each fenced block."""
    for match in FENCE.finditer(text):
        yield match.group(1).lower(), text.count("\n", 0, match.start(2)) + 1, match.group(2)


def _outside_fences(text: str) -> str:
    """The text with fenced blocks blanked (line numbers kept)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _shell_lines(body: str, first_line: int):
    """Logical lines of a shell block (continuations joined), with their line numbers."""
    pending, start = "", first_line
    for number, line in enumerate(body.splitlines(), first_line):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def _simple_commands(line: str) -> list[list[str]]:
    """A shell line as its simple commands (split at && || ; | &), redirections and comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current, skip = [], [], False
    for token in lexer:
        if skip:
            skip = False
        elif token in OPERATORS:
            commands.append(current)
            current = []
        elif token in REDIRECTS:
            skip = True
        else:
            current.append(token)
    commands.append(current)
    return [command for command in commands if command]


def _after_python(words: list[str]) -> tuple[Entry | None, list[str], tuple[str, ...]]:
    """What `python ARGS` runs: (entry, its arguments, files that must exist); entry None for the
    standard library's own modules (venv)."""
    if words[0] == "-m":
        module, rest = words[1], words[2:]
        if module == "venv":
            return None, [], ()
        if module == "pytest":
            return None, [], tuple(word.split("::")[0] for word in rest if word.startswith("tests/"))
        if module == "merclip":
            sub = next((word for word in rest if not word.startswith("-")), None)
            return Entry("module", module, sub), rest, ()
        return Entry("module", module), rest, ()
    return Entry("script", words[0]), words[1:], ()


def _command(where: str, words: list[str], text: str) -> list[Command]:
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):  # VAR=value before the program
        words = words[1:]
    if not words:
        return []
    program = Path(words[0]).name
    if re.fullmatch(r"python[\d.]*", program):
        entry, rest, files = _after_python(words[1:])
    elif program == "merclip":  # the text's short name for `python -m merclip`
        entry, rest, files = _after_python(["-m", *words])
    elif re.fullmatch(r"train\.\w+", words[0]):  # the text's short name for `python -m train.<x>`
        entry, rest, files = _after_python(["-m", *words])
    elif program == "torchrun":
        assert "-m" in words, f"{where}: torchrun without -m: {text}"
        entry, rest, files = _after_python(words[words.index("-m"):])
    elif program == "pip":
        files = tuple(words[i + 1] for i, word in enumerate(words) if word == "-r")
        return [Command(where, text, files=files)]
    elif program == "pytest":
        return [Command(where, text, files=tuple(w.split("::")[0] for w in words if w.startswith("tests/")))]
    elif program == "sbatch":  # the job is the --wrap string
        wrapped = next(word.split("=", 1)[1] if "=" in word else words[i + 1]
                       for i, word in enumerate(words) if word.startswith("--wrap"))
        return [command for simple in _simple_commands(wrapped) for command in _command(where, simple, wrapped)]
    elif program in OTHER_PROGRAMS:
        return []
    else:
        raise AssertionError(f"{where}: `{text}` runs {words[0]}, which is neither this project's nor a "
                             f"known tool (add it to OTHER_PROGRAMS if it is a real one)")
    if entry is None:
        return [Command(where, text, files=files)]
    flags = tuple(dict.fromkeys(FLAG.match(word).group(0) for word in rest if FLAG.match(word)))
    return [Command(where, text, entry, flags, files)]


@cache
def documented_commands() -> tuple[Command, ...]:
    found = []
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for language, first_line, body in _fenced(text):
            if language not in SHELL_LANGUAGES:
                continue
            for number, line in _shell_lines(body, first_line):
                where = f"{_rel(path)}:{number}"
                for simple in _simple_commands(line):
                    found += _command(where, simple, line.strip())
        prose = _outside_fences(text)
        for match in INLINE.finditer(prose):
            span = " ".join(match.group(1).split())
            if not INLINE_COMMAND.match(span):
                continue
            where = f"{_rel(path)}:{prose.count(chr(10), 0, match.start()) + 1}"
            # usage lines show options as [--flag VALUE] and choices as a|b: only the words matter here
            words = span.replace("[", " ").replace("]", " ").replace("|", " ").split()
            found += _command(where, words, span)
    return tuple(found)


def _sources(entry: Entry) -> list[Path]:
    """The files an entry point runs from (a package: all of its modules); none when it does not exist."""
    if entry.kind == "script":
        return [ROOT / entry.name] if (ROOT / entry.name).is_file() else []
    try:
        spec = importlib.util.find_spec(entry.name)
    except ImportError:
        return []
    if spec is None or not spec.origin:
        return []
    origin = Path(spec.origin)
    return sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]


def _has_parser(entry: Entry) -> bool:
    """Whether the entry point reads its arguments (argparse, or an argv handed on to a parser): one that
    does not would run on `--help`, not print it (`python assets/make_examples.py` rebuilds the examples)."""
    return any(re.search(r"argparse|argv", source.read_text(encoding="utf-8")) for source in _sources(entry))


HELP_HARNESS = r"""
import contextlib, io, json, runpy, sys, warnings
warnings.simplefilter("ignore")
shown = []
for kind, name, argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    sys.argv = argv
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_module(name, run_name="__main__", alter_sys=True) if kind == "module" else runpy.run_path(name, run_name="__main__")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException as error:
            code, _ = 1, out.write(f"{type(error).__name__}: {error}")
    shown.append([code, out.getvalue()])
print("\n@@HELP@@" + json.dumps(shown))
"""


@cache
def help_texts() -> dict[Entry, tuple[int, str]]:
    """(exit status, output) of `--help` for every entry point the docs name that reads arguments, all
    in one process, so torch and gradio are imported once (scripts under tests/, which patch what they
    start, run last)."""
    entries = sorted({c.entry for c in documented_commands() if c.entry and _has_parser(c.entry)},
                     key=lambda e: (e.name.startswith("tests/"), e.kind, e.name, e.sub or ""))
    plan = [[e.kind, e.name, [e.name if e.kind == "script" else e.name.split(".")[-1], *e.argv()[1:]]]
            for e in entries]
    shown = subprocess.run([sys.executable, "-c", HELP_HARNESS, json.dumps(plan)], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert "@@HELP@@" in shown.stdout, f"the --help runs crashed: {shown.stderr[-2000:]}"
    results = json.loads(shown.stdout.split("@@HELP@@", 1)[1])
    assert len(results) == len(entries), results.keys()
    return {entry: tuple(result) for entry, result in zip(entries, results)}


def _commands_ids():
    return [f"{c.where} {c.text[:60]}" for c in documented_commands()]


def test_the_docs_show_commands_of_every_kind():
    """The parser finds what the pages hold (a parser that finds nothing would pass everything)."""
    commands = documented_commands()
    names = {str(c.entry) for c in commands if c.entry}
    assert {"python app.py", "python -m merclip predict", "python -m merclip bench", "python -m merclip doctor",
            "python -m train.train", "python -m train.evaluate", "python -m train.reproduce"} <= names, names
    assert any("requirements.txt" in c.files for c in commands)
    assert any(c.where.startswith("README.md") and c.entry for c in commands)
    assert sum(len(c.flags) for c in commands) > 50


@pytest.mark.parametrize("command", documented_commands(), ids=_commands_ids())
def test_every_command_shown_exists_with_the_flags_shown(command):
    for name in command.files:
        assert (ROOT / name).exists(), f"{command.where}: `{command.text}` names {name}, which does not exist"
    if command.entry is None:
        return
    entry = command.entry
    assert _sources(entry), f"{command.where}: `{command.text}`: there is no {entry.kind} {entry.name}"
    if not _has_parser(entry):
        assert not command.flags, (f"{command.where}: `{command.text}` passes {', '.join(command.flags)} to "
                                   f"{entry}, which takes no options")
        return
    code, text = help_texts()[entry]
    assert code == 0, f"{command.where}: `{command.text}`: `{entry} --help` exits {code}:\n{text[-2000:]}"
    if entry.name == "merclip":
        assert entry.sub and entry.sub in text.split("\n", 1)[0] + text, (
            f"{command.where}: `{command.text}`: no subcommand {entry.sub!r} of python -m merclip")
    missing = [flag for flag in command.flags if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]
    assert not missing, (f"{command.where}: `{command.text}` shows {', '.join(missing)}, which `{entry} --help` "
                         f"does not list")


def _python_blocks() -> list[tuple[str, str]]:
    return [(f"{_rel(path)}:{line}", body) for path in DOC_FILES
            for language, line, body in _fenced(path.read_text(encoding="utf-8")) if language == "python"]


@pytest.mark.parametrize("where, code", _python_blocks(), ids=[where for where, _ in _python_blocks()])
def test_every_python_block_compiles_and_its_imports_exist(where, code):
    tree = compile(code, where, "exec", ast.PyCF_ONLY_AST)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{where}: `from {node.module} import {alias.name}`: no such name"


@pytest.fixture(scope="module")
def media_folder(tmp_path_factory, astronaut):
    """The files the Python examples open, in a folder of their own: a face photo and a short, small clip
    (face detection on full-size frames would be most of this file's time)."""
    folder = tmp_path_factory.mktemp("docs-media")
    astronaut.save(folder / "face.jpg")
    clip = speech_clip(folder / "clip.mp4", seconds=2, size=160)
    (folder / "interview.mp4").write_bytes(clip.read_bytes())
    return folder


@pytest.mark.parametrize("where, code", [(w, c) for w, c in _python_blocks() if "load_model(" in c],
                         ids=[w for w, c in _python_blocks() if "load_model(" in c])
def test_the_python_examples_run_with_the_tiny_model(where, code, tiny_model, media_folder, astronaut, monkeypatch):
    """Run as shown, with `load_model` giving the tiny random model (no weights to download) and the
    bundled Whisper turned off (`whisper="none"`) to keep it fast."""
    import merclip.reading

    loaded = []
    monkeypatch.setattr(merclip, "load_model", lambda *args, **kwargs: loaded.append(args or kwargs) or tiny_model)
    real_analyzer = merclip.reading.Analyzer
    monkeypatch.setattr(merclip.reading, "Analyzer",
                        lambda model, *args, **kwargs: real_analyzer(model, *args, **{**kwargs, "whisper": "none"}))
    monkeypatch.chdir(media_folder)
    frame = np.asarray(astronaut.resize((160, 160)))  # a live webcam frame (RGB)
    exec(compile(code, where, "exec"), {"__name__": "docs_example", "frame": frame})  # noqa: S102 -- our own docs
    assert loaded, f"{where}: the example loads no model"


def _links(path: Path) -> list[tuple[str, str]]:
    """(target, line) of each relative Markdown link or image in a page, code left out."""
    prose = _outside_fences(path.read_text(encoding="utf-8"))
    prose = re.sub(r"`[^`\n]*`", "", prose)
    found = re.findall(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"", prose)
    return [target for pair in found for target in pair if target and not re.match(r"[a-z]+:", target)]


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for a page's headings."""
    text = _outside_fences(path.read_text(encoding="utf-8"))
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_the_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail to docs/"
    targets = {(README.parent / target.split("#")[0]).resolve() for target in _links(README)}
    unlinked = [_rel(page) for page in PAGES if page.resolve() not in targets]
    assert not unlinked, f"README.md does not link {unlinked}"
    for picture in ("laptop", "phone", "live"):
        assert f"assets/screenshots/{picture}.png" in "\n".join(lines)


def test_the_docs_index_links_every_page():
    index = DOCS / "README.md"
    targets = {(DOCS / target.split("#")[0]).resolve() for target in _links(index)}
    unlinked = [_rel(page) for page in PAGES if page != index and page.resolve() not in targets]
    assert not unlinked, f"docs/README.md does not link {unlinked}"


@pytest.mark.parametrize("path", DOC_FILES, ids=[_rel(p) for p in DOC_FILES])
def test_every_link_lands_on_a_file_and_heading(path):
    for target in _links(path):
        file, _, anchor = target.partition("#")
        landing = (path.parent / file).resolve() if file else path
        assert landing.exists(), f"{_rel(path)} links {target}: no such file"
        if anchor and landing.suffix == ".md":
            assert anchor in _anchors(landing), f"{_rel(path)} links {target}: {_rel(landing)} has no such heading"
