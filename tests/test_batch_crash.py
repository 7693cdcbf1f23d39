"""Kill a batch run (SIGKILL) again and again, inside writes too, resume it each time: the outputs
end with every file exactly once, every record whole, and the same results as a run never killed.

The runs are the real command line (`merclip.commands.cli.main`, as `python -m merclip` calls it) in
processes of their own. Importing torch, open_clip and librosa takes ~8 s here, so this module,
run as a script, is a small harness that imports them once and forks a child process per run,
which then loads the models and analyses files as any run does. Only in those children, the
writer is slowed: each record is written in two parts (cut at a random byte) with a pause
between, and the harness hears when a first part is out, so it can kill a child inside a write
for certain. Every kill lands at or before a run's second write, so no run gets far ahead: each
file's two records (JSON line, CSV rows) take several runs, and the kills spread over the batch.
"""

import csv
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_RUNS = 200  # the batch ends long before: at most one record is added per killed run, 24 in all
PAUSE_SECONDS = 0.15  # inside a write, between its two parts
SEED = 25
ENV = {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "MPLBACKEND": "Agg"}


def make_media(folder: Path) -> list[Path]:
    """Eight short clips with speech (two or three one-second windows: several CSV rows each), three
    images (one row each) and a file that is not media (an error record)."""
    from PIL import Image

    from merclip.media.sample_media import face_frames, speech_track, write_clip

    folder.mkdir()
    for i in range(8):
        write_clip(folder / f"clip{i}.mp4", face_frames(6 + i, 64), fps=5, audio=speech_track(1.2 + 0.2 * i))
    for i, frame in enumerate(face_frames(3, 96)):
        Image.fromarray(frame).save(folder / f"face{i}.{'png' if i % 2 else 'jpg'}")
    (folder / "broken.mp4").write_text("not a video")
    return sorted(p for p in folder.iterdir())


@pytest.mark.slow
def test_killed_and_resumed_many_times_the_outputs_equal_an_uninterrupted_run(tmp_path):
    media = make_media(tmp_path / "media")
    started = time.monotonic()
    harness = subprocess.run([sys.executable, "-m", "tests.test_batch_crash", str(tmp_path)], cwd=ROOT,
                             env={**os.environ, **ENV}, capture_output=True, text=True, timeout=600)
    assert harness.returncode == 0, harness.stderr[-3000:]
    report = json.loads(harness.stdout)
    print(f"\n{report['kills']} kills ({report['inside_writes']} inside a write), {time.monotonic() - started:.0f} s")
    assert report["kills"] >= 20 and report["inside_writes"] >= 8, report
    assert report["finished"] == [0, 0] and f"{len(media)} already done" in report["last_stderr"], report

    reference, resumed = (read_outputs(tmp_path / name) for name in ("reference", "resumed"))
    names = {str(p.resolve()) for p in media}  # as the command line names them
    for jsonl, table in (reference, resumed):
        assert [r["file"] for r in jsonl] == sorted(names), "every file exactly once, in order"
        assert [file for file, _ in table] == sorted(names), "every file's rows exactly once, together"
    assert [without_timings(r) for r in resumed[0]] == [without_timings(r) for r in reference[0]]
    assert resumed[1] == reference[1], "the same rows: probabilities, texts, settings"
    assert (tmp_path / "resumed.csv").read_bytes() == (tmp_path / "reference.csv").read_bytes()
    errors = [r for r in resumed[0] if "error" in r]
    assert [Path(r["file"]).name for r in errors] == ["broken.mp4"]
    rows = [row for _, group in resumed[1] for row in group if not row["error"]]
    assert len(rows) > len(media) and all(abs(float(row["p:happy"]) + float(row["p:sad"]) - 1) < 1e-4 for row in rows)


def read_outputs(stem: Path) -> tuple[list[dict], list[tuple[str, list[dict]]]]:
    """The JSON lines (each must parse; the file ends with a newline) and the CSV rows grouped by file
    (each row must have every column; each file's rows together, as many as its `segments` says)."""
    data = stem.with_suffix(".jsonl").read_bytes()
    assert data.endswith(b"\n")
    jsonl = [json.loads(line) for line in data.split(b"\n")[:-1]]
    groups: list[tuple[str, list[dict]]] = []
    with open(stem.with_suffix(".csv"), encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, strict=True)
        for row in reader:
            assert None not in row and None not in row.values(), f"a cut row: {row}"
            if not groups or groups[-1][0] != row["file"]:
                groups.append((row["file"], []))
            groups[-1][1].append(row)
    for file, group in groups:
        assert len(group) == int(group[0]["segments"] or 1), f"{file}: {len(group)} rows, some missing"
    return jsonl, groups


def without_timings(record: dict) -> dict:
    return record if "error" in record else {**record, "result": {k: v for k, v in record["result"].items()
                                                                   if k != "timings_ms"}}


# The harness: `python -m tests.test_batch_crash FOLDER` (FOLDER/media in, FOLDER/{reference,resumed}.* out).

def harness(folder: Path) -> dict:
    from merclip import api  # noqa: F401
    from merclip.commands.cli import main
    from merclip.media.acoustic_features import audio_frame_features
    from merclip.reading import analyzer, batch, segment_reader  # noqa: F401  (imported once, shared by every child)

    audio_frame_features(np.zeros(8000, np.float32))  # librosa's numba kernels, compiled or loaded once (no torch)
    rng = random.Random(SEED)

    def command(stem: str) -> list[str]:
        return ["predict", str(folder / "media"), "--labels", "happy, sad", "--out", str(folder / f"{stem}.jsonl"),
                "--csv", str(folder / f"{stem}.csv"), "--segments", "window:1", "--clip", "merclip-tiny:random",
                "--whisper", "none", "--device", "cpu", "--no-face", "--no-progress"]

    log = folder / "log"
    assert run_child(main, command("reference"), log) == (0, False), log.read_text()
    kills = inside = 0
    for _ in range(MAX_RUNS):
        # Some runs die inside their first or second write; the others at a random moment (start-up, model
        # loading, analysis, a write), but no later than inside their second write.
        draw = rng.random()
        at_write, after = (1, None) if draw < 0.1 else (2, None) if draw < 0.45 else (2, rng.uniform(0.0, 3.0))
        status, killed_in = run_child(main, command("resumed"), log, (rng.randrange(2 ** 32), at_write), after)
        if status == 0:
            break  # the batch finished before this run's kill
        assert status == -signal.SIGKILL, log.read_text()
        kills, inside = kills + 1, inside + killed_in
    finished = [run_child(main, command("resumed"), log)[0] for _ in range(2)]
    return {"kills": kills, "inside_writes": inside, "finished": finished, "last_stderr": log.read_text()}


def run_child(main, argv: list[str], log: Path, slow: tuple[int, int] | None = None,
              kill_after: float | None = None) -> tuple[int, bool]:
    """Fork a child that runs `main(argv)` (stderr to `log`). With `slow` = (seed, n), its writes come in
    two parts and it is killed inside its n-th write (it waits there), or after `kill_after` s if sooner.
    Returns (exit status, or -9 when killed; whether killed inside a write)."""
    notify_read, notify_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.close(notify_read)
            os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
            if slow is not None:
                slow_writes(random.Random(slow[0]), notify_write, slow[1])
            code = main(argv)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(notify_write)
    start, writes = time.monotonic(), 0
    try:
        while True:
            left = 0.05 if kill_after is None else start + kill_after - time.monotonic()
            if select.select([notify_read], [], [], max(0.0, min(0.05, left)))[0]:
                writes += len(os.read(notify_read, 64))
            inside = slow is not None and writes >= slow[1]
            if inside or (kill_after is not None and left <= 0):
                os.kill(pid, signal.SIGKILL)  # our own child, not yet reaped: the pid cannot be anyone else's
                return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), inside
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), False
    finally:
        os.close(notify_read)


def slow_writes(rng: random.Random, notify: int, stop_at: int) -> None:
    """Test only: every record written in two parts, cut at a random byte, with a pause between that the
    harness hears about (b"w" on `notify`); the `stop_at`-th write waits there to be killed."""
    from merclip.reading.batch import ResultFile

    write, count = ResultFile._append, 0

    def in_two_parts(self, data: bytes) -> None:
        nonlocal count
        count += 1
        cut = rng.randrange(1, len(data))
        write(self, data[:cut])
        os.write(notify, b"w")
        time.sleep(600 if count == stop_at else PAUSE_SECONDS)
        write(self, data[cut:])

    ResultFile._append = in_two_parts


if __name__ == "__main__":
    print(json.dumps(harness(Path(sys.argv[1]))))
