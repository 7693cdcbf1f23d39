"""Many files in one run, written to result files that a crash never corrupts.

Every media file of the given files and folders gets one record: its result (or its error)
with the settings that produced it, as one JSON line in `--out` and/or as its rows in
`--csv` (one per segment, else one). A record is appended in one write and synced to disk
before the next file starts, so a crash can only leave the last record cut short; opening an
output cuts such a torn tail off (parsing CSV as CSV: a transcript may hold quoted newlines)
before anything is appended. A file is done when every requested output holds its complete
record: a run again analyses the others and writes each record only where it is missing. An
output written with other settings is refused, never mixed. A bad file becomes an error
record and the rest go on; a name that is not UTF-8 is recorded escaped. `--shard i/n` (or
torchrun's ranks) takes the files whose names hash to shard i (merclip/reading/shards.py), and each
shard writes its own output files.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from merclip.errors import MerClipError
from merclip.head.result import strict_json

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one run per output file is then up to the user
    fcntl = None

MEDIA_SUFFIXES = {".mp4", ".m4v", ".webm", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".ts",
                  ".wav", ".mp3", ".m4a", ".ogg", ".flac", ".png", ".jpg", ".jpeg", ".webp"}
CSV_FIXED = ["file", "start", "end", "text", "top_label", "sentiment", "error"]
CSV_BOOKKEEPING = ["segments", "settings"]  # after the p:LABEL columns: the file's row count, what produced it


def media_files(paths: Sequence[str | Path]) -> dict[Path, str]:
    """The files named, and the media files inside the folders named (recursively), sorted, each once, with
    each one's name where the run is given it: its path relative to the folder named (the smallest, when
    found under several), or its file name when named itself. The name is the same on every machine that
    holds the folder, wherever it is mounted: the shards are drawn by it."""
    found: dict[Path, str] = {}

    def add(path: Path, name: str) -> None:
        found[path] = min(name, found.get(path, name))

    for given in paths:
        path = Path(given)
        if path.is_dir():
            for file in path.rglob("*"):
                if file.is_file() and file.suffix.lower() in MEDIA_SUFFIXES:
                    add(file.resolve(), file.relative_to(path).as_posix())
        elif path.is_file():
            add(path.resolve(), path.name)
        else:
            raise MerClipError(f"file not found: {given}")
    return dict(sorted(found.items()))


def shard_path(path: Path, index: int, count: int) -> Path:
    """`results.jsonl` -> `results.0-of-4.jsonl` for shard 0 of 4 (unchanged for a single shard)."""
    return path if count == 1 else path.with_name(f"{path.stem}.{index}-of-{count}{path.suffix}")


class ResultFile:
    """One output, open for appending records for the length of a run (and locked against a second
    run: two writers would cut each other's records). `done`: the files it holds complete records of."""

    flag = ""  # the option that names this kind of output, for messages

    def __init__(self, path: Path, settings: dict[str, Any], labels: Sequence[str]) -> None:
        self.path, self.labels = path, list(labels)
        self.settings = json.loads(json.dumps(settings))  # as it reads back (lists, not tuples), to compare
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise MerClipError(f"cannot write {self.flag} {path}: {exc.strerror}") from None
        try:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with open(path, "rb") as handle:
                self.done, end = self._records(handle)
            if end < os.fstat(self._fd).st_size:  # a record a crash left half-written: the next would be buried in it
                os.ftruncate(self._fd, end)
        except OSError as exc:
            os.close(self._fd)
            raise MerClipError(f"another run is writing {path}: wait for it, or give another {self.flag}"
                               if isinstance(exc, BlockingIOError) else
                               f"cannot write {self.flag} {path}: {exc.strerror}") from None
        except BaseException:
            os.close(self._fd)
            raise
        self._empty = end == 0

    def add(self, line: dict[str, Any]) -> None:
        """Append one file's record (`{"file", "result" or "error"}`), naming this run's settings."""
        data = self._encode({"file": line["file"], "settings": self.settings} | line)
        try:
            self._append(data)
        except OSError as exc:
            raise MerClipError(f"cannot write {self.flag} {self.path}: {exc.strerror}") from None
        self.done.add(line["file"])
        self._empty = False

    def _append(self, data: bytes) -> None:
        """The whole record in one write at the end (O_APPEND; the loop only resumes a short write), on disk
        before the next file starts: a crash leaves it whole, or cut short as the file's last bytes."""
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _records(self, handle: BinaryIO) -> tuple[set[str], int]:
        """The files with complete records in the file, and the length of its complete part (read as a
        stream: a results file may be larger than memory)."""
        raise NotImplementedError

    def _encode(self, record: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def _check(self, settings: Any) -> None:
        """Refuse to append to results of other settings: one file, one set of settings."""
        if settings == self.settings:
            return
        if not isinstance(settings, dict):
            what = "that name no settings (written by an older merclip)"
        else:
            keys = [k for k in settings | self.settings if settings.get(k) != self.settings.get(k)]
            what = "of other settings (" + "; ".join(
                f"{k}: {_brief(settings.get(k))} there, {_brief(self.settings.get(k))} now" for k in keys) + ")"
        raise MerClipError(f"{self.path} holds results {what}: resume with the same settings, "
                           f"or give another {self.flag} for a new file")

    def _damaged(self, where: str) -> MerClipError:
        return MerClipError(f"{self.path}: {where} is not a whole merclip record (edited, or cut by a crash of an "
                            f"older merclip): repair or move the file, or give another {self.flag}")


class JsonLines(ResultFile):
    """`--out`: one JSON object per line. A record is whole once its newline is written (JSON escapes
    every newline inside it), so everything after the last newline is a torn record."""

    flag = "--out"

    def _records(self, handle: BinaryIO) -> tuple[set[str], int]:
        done, end = set(), 0
        for number, line in enumerate(handle, 1):
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
                done.add(record["file"])
            except (ValueError, KeyError, TypeError):
                raise self._damaged(f"line {number}") from None
            self._check(record.get("settings"))
            end += len(line)
        return done, end

    def _encode(self, record: dict[str, Any]) -> bytes:
        return (strict_json(record) + "\n").encode("utf-8")


class CsvTable(ResultFile):
    """`--csv`: a header, then each file's rows together. Its `segments` column says how many rows a
    file has, so a record cut at a row's end is found as surely as one cut inside a row."""

    flag = "--csv"

    def _records(self, handle: BinaryIO) -> tuple[set[str], int]:
        rows = self._whole_rows(handle)
        header, _ = next(rows, ([], 0))
        done, end, group = set(), 0, []  # no whole record yet: the header is written again with the first
        for number, (row, row_end) in enumerate(rows, 2):
            item = dict(zip(header, row))
            try:
                wanted = int(item.get("segments") or 1)
            except ValueError:
                raise self._damaged(f"row {number}") from None
            if len(row) != len(header) or any(g.get("file") != item.get("file") for g in group):
                raise self._damaged(f"row {number}")
            group.append(item)
            if len(group) == wanted:
                self._check(_json_or_none(item.get("settings")))
                done, end, group = done | {item["file"]}, row_end, []
        if done and header != csv_columns(self.labels):
            raise MerClipError(f"{self.path} has other columns than this run writes: give another {self.flag}")
        return done, end

    def _whole_rows(self, handle: BinaryIO) -> Iterator[tuple[list[str], int]]:
        """Each row that ends with its line end, with the bytes up to there. The reader takes a line at a
        time and yields a row once its last line is in, so the lines taken say where the row ends."""
        taken, last, at_end = 0, b"", False

        def feed() -> Iterator[str]:
            nonlocal taken, last, at_end
            for line in handle:
                taken, last = taken + len(line), line
                yield line.decode("utf-8", errors="replace")
            at_end = True

        reader = csv.reader(feed(), strict=True)
        try:
            for row in reader:
                if last.endswith(b"\n"):
                    yield row, taken
        except csv.Error:
            if not at_end:  # bad quoting before the end: not a tear
                raise self._damaged(f"line {reader.line_num}") from None
            # else a quoted field (a text with newlines) cut short by the end of the file

    def _encode(self, record: dict[str, Any]) -> bytes:
        buffer = io.StringIO()
        writer = csv_writer(buffer, self.labels)
        if self._empty:
            writer.writeheader()
        writer.writerows(rows_of(record, self.labels))
        return buffer.getvalue().encode("utf-8")


def record_name(path: Path) -> str:
    """A file's name in the records: its path, with what UTF-8 cannot hold (the bytes of a name in another
    system's encoding, kept by Python as surrogates) escaped as MerClipError escapes it (`\\udcff`), so
    its record can be written and a resume finds it."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def pending(files: Iterable[Path], outputs: Sequence[ResultFile]) -> list[Path]:
    """The files that some output holds no complete record of."""
    return [path for path in files if any(record_name(path) not in output.done for output in outputs)]


def run_batch(files: Iterable[Path], analyse: Callable[[Path], dict], outputs: Sequence[ResultFile],
              show_progress: bool = True) -> tuple[int, int]:
    """`analyse(path)` gives one file's result (with an optional `segments` list); its record goes to each
    output that lacks it (one that has it was written before a crash). Returns (analysed, failed)."""
    from tqdm import tqdm

    todo = list(files)
    ok = failed = 0
    for path in tqdm(todo, desc="merclip", unit="file", disable=not show_progress, file=sys.stderr):
        try:
            line = {"file": record_name(path), "result": analyse(path)}
            ok += 1
        except MerClipError as exc:
            line = {"file": record_name(path), "error": str(exc)}
            failed += 1
        for output in outputs:
            if line["file"] not in output.done:
                output.add(line)
    return ok, failed


def rows_of(line: dict, labels: Sequence[str]) -> list[dict]:
    """CSV rows of one file's record: one per segment when it has segments, else one for the whole file.
    Every row names the settings (when the record has them) and how many rows the file has."""
    bookkeeping = {"settings": json.dumps(line["settings"], ensure_ascii=False)} if "settings" in line else {}
    if "error" in line:
        return [{"file": line["file"], "error": line["error"], **bookkeeping}]
    result = line["result"]
    segments = result.get("segments") or []
    parts = segments or [{
        "start": 0.0, "end": None, "text": (result.get("transcript") or {}).get("text", ""),
        "top_label": result["top_label"], "sentiment": result.get("sentiment"), "probs": result["probs"]}]
    rows = []
    for part in parts:
        probs = dict(zip(result["labels"], part["probs"]))
        rows.append({"file": line["file"], "start": part["start"], "end": part["end"], "text": part["text"],
                     "top_label": part["top_label"], "sentiment": part["sentiment"],
                     **{f"p:{label}": probs.get(label) for label in labels}, "segments": len(segments) or "",
                     **bookkeeping})
    return rows


def csv_columns(labels: Sequence[str]) -> list[str]:
    """The columns of every results table: file, times, text, top label, sentiment, error, p:LABEL each,
    then the file's row count and the settings."""
    return CSV_FIXED + [f"p:{label}" for label in labels] + CSV_BOOKKEEPING


def csv_writer(handle: TextIO, labels: Sequence[str]) -> csv.DictWriter:
    return csv.DictWriter(handle, fieldnames=csv_columns(labels), restval="")


def _json_or_none(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return None


def _brief(value: Any, width: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."
