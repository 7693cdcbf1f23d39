"""Many files in one run: every media file of the given files and folders, one result line each.

Results are appended as each file finishes (JSON lines, and/or CSV rows), so nothing is lost
when a run stops; a run again with the same output skips the files already there. A bad file
becomes an error line and the rest go on. `--shard i/n` (or torchrun's ranks) takes every
n-th file of the sorted list, and each shard writes its own output file.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

from merclip.errors import MerClipError

MEDIA_SUFFIXES = {".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".ts",
                  ".wav", ".mp3", ".m4a", ".ogg", ".flac", ".png", ".jpg", ".jpeg", ".webp"}
CSV_FIXED = ["file", "start", "end", "text", "top_label", "sentiment", "error"]


def media_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files named, and the media files inside the folders named (recursively), sorted, each once."""
    found: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found |= {p.resolve() for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES}
        elif path.is_file():
            found.add(path.resolve())
        else:
            raise MerClipError(f"file not found: {given}")
    return sorted(found)


def shard_path(path: Path, index: int, count: int) -> Path:
    """`results.jsonl` -> `results.0-of-4.jsonl` for shard 0 of 4 (unchanged for a single shard)."""
    return path if count == 1 else path.with_name(f"{path.stem}.{index}-of-{count}{path.suffix}")


def done_files(jsonl: Path | None, table: Path | None) -> set[str]:
    """Files with a line already in the outputs (a re-run skips them; a line cut by a crash is ignored)."""
    done: set[str] = set()
    if jsonl is not None and jsonl.is_file():
        for line in jsonl.read_text(encoding="utf-8").splitlines():
            try:
                done.add(json.loads(line)["file"])
            except (ValueError, KeyError, TypeError):
                continue
    if table is not None and table.is_file():
        with open(table, encoding="utf-8", newline="") as handle:
            done |= {row["file"] for row in csv.DictReader(handle) if row.get("file")}
    return done


def run_batch(files: Iterable[Path], analyse: Callable[[Path], dict], jsonl: Path | None, table: Path | None,
              labels: list[str], show_progress: bool = True) -> tuple[int, int]:
    """`analyse(path)` gives one file's result (with an optional `segments` list); returns (done, failed)."""
    from tqdm import tqdm

    todo = list(files)
    ok = failed = 0
    for path in tqdm(todo, desc="merclip", unit="file", disable=not show_progress, file=sys.stderr):
        try:
            line = {"file": str(path), "result": analyse(path)}
            ok += 1
        except MerClipError as exc:
            line = {"file": str(path), "error": str(exc)}
            failed += 1
        if jsonl is not None:
            with open(jsonl, "a", encoding="utf-8") as out:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        if table is not None:
            write_rows(table, rows_of(line, labels), labels)
    return ok, failed


def rows_of(line: dict, labels: list[str]) -> list[dict]:
    """CSV rows of one file's line: one per segment when it has segments, else one for the whole file."""
    if "error" in line:
        return [{"file": line["file"], "error": line["error"]}]
    result = line["result"]
    parts = result.get("segments") or [{
        "start": 0.0, "end": None, "text": (result.get("transcript") or {}).get("text", ""),
        "top_label": result["top_label"], "sentiment": result.get("sentiment"),
        "probs": dict(zip(result["labels"], result["probs"]))}]
    return [{"file": line["file"], "start": p["start"], "end": p["end"], "text": p["text"], "top_label": p["top_label"],
             "sentiment": p["sentiment"], **{f"p:{label}": p["probs"].get(label) for label in labels}} for p in parts]


def write_rows(table: Path, rows: list[dict], labels: list[str]) -> None:
    """Append rows to a CSV file, with its header when the file is new."""
    new = not table.is_file() or table.stat().st_size == 0
    with open(table, "a", encoding="utf-8", newline="") as handle:
        writer = csv_writer(handle, labels)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def csv_writer(handle: TextIO, labels: Sequence[str]) -> csv.DictWriter:
    """The columns of every results table: file, times, text, top label, sentiment, error, then p:LABEL each."""
    return csv.DictWriter(handle, fieldnames=CSV_FIXED + [f"p:{label}" for label in labels], restval="")
