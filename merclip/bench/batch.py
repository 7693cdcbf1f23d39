"""The bench's batch memory figure: does a command-line batch hold more with every file it reads?

A batch left running overnight must not grow: a run that cannot re-score has no reason to
keep any clip. The figure runs `merclip predict FOLDER --segments utterance --out ...` in its
own process and reads that process's resident memory each time a file's result line lands.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from merclip.errors import MerClipError
from merclip.media.sample_media import face_frames, speech_track, write_clip

POLL_SECONDS = 0.1


def batch_memory(clip: str, whisper: str, device: str, folder: Path, labels: str, files: int = 20,
                 seconds: int = 60) -> dict:
    """Resident memory (MB) after each of `files` different one-minute clips with speech, read by
    utterance in one command-line batch, and its largest growth over its value after the third file
    (the largest, not the last: the process lets memory go as it ends)."""
    media = folder / "batch"
    media.mkdir(exist_ok=True)
    for index in range(files):
        write_clip(media / f"clip{index:02d}.mp4", face_frames(seconds * 5, 256), fps=5,
                   audio=speech_track(float(seconds), gap_seconds=0.3 + 0.02 * index))  # each file its own content
    out = folder / "batch.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "merclip", "predict", str(media), "--labels", labels, "--clip", clip,
         "--whisper", whisper, "--device", device, "--segments", "utterance", "--out", str(out), "--no-progress"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    after_file: list[float] = []
    peak = 0.0
    while process.poll() is None:
        rss, hwm = _memory_mb(process.pid)
        peak = max(peak, hwm)
        done = _lines(out)
        if done > len(after_file):
            after_file += [rss] * (done - len(after_file))
        time.sleep(POLL_SECONDS)
    if process.returncode != 0 or len(after_file) < files:
        raise MerClipError(f"the batch memory run failed: {(process.stderr.read() or '').strip()[-300:]}")
    third = after_file[2]
    return {"files": files, "clip_seconds": seconds, "rss_mb_after_file": [round(x) for x in after_file],
            "peak_rss_mb": round(peak), "growth_after_3rd": round((max(after_file[2:]) - third) / third, 4)}


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of a process in MB, from /proc (Linux)."""
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name = line.split(":", 1)[0] + ":"
                if name in values:
                    values[name] = int(line.split()[1]) / 1024
    except OSError:  # the process has just ended
        pass
    return values["VmRSS:"], values["VmHWM:"]


def _lines(path: Path) -> int:
    """Complete result lines written so far."""
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0
