"""Many files in one run: a folder to JSON lines and CSV, resumed, sharded; one file by segments."""

import csv
import json

import numpy as np
import pytest

from merclip.cli import main
from merclip.sample_media import face_frames, speech_track, write_clip

TINY = ["--clip", "merclip-tiny:random", "--whisper", "none", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three short clips, one broken "video", a text file, and a nested folder with an audio file."""
    root = tmp_path_factory.mktemp("media")
    for i in range(3):
        write_clip(root / f"clip{i}.mp4", face_frames(10 + i, 96), fps=5, audio=speech_track(2.0 + i * 0.2))
    (root / "broken.mp4").write_text("not a video")
    (root / "notes.txt").write_text("not media")
    (root / "more").mkdir()
    from tests.test_browser_webcam import write_wav

    write_wav(root / "more" / "voice.wav", speech_track(2.0))
    return root


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_folder_gives_one_line_per_media_file_a_bad_one_an_error_and_a_rerun_skips_them(folder, tmp_path, capsys):
    out = tmp_path / "results.jsonl"
    assert main(["predict", str(folder), "--labels", "happy, sad", "--out", str(out), *TINY]) == 0
    first = lines(out)
    names = sorted(p.split("/")[-1] for p in (line["file"] for line in first))
    assert names == ["broken.mp4", "clip0.mp4", "clip1.mp4", "clip2.mp4", "voice.wav"], "media only, nested too"
    broken = next(line for line in first if line["file"].endswith("broken.mp4"))
    assert "error" in broken and "\n" not in broken["error"]
    good = [line for line in first if "result" in line]
    assert len(good) == 4 and all(line["result"]["labels"] == ["happy", "sad"] for line in good)
    assert "4 analysed, 1 failed" in capsys.readouterr().err
    assert main(["predict", str(folder), "--labels", "happy, sad", "--out", str(out), *TINY]) == 0
    assert "5 already done" in capsys.readouterr().err and len(lines(out)) == 5, "nothing analysed twice"


def test_two_shards_cover_every_file_exactly_once(folder, tmp_path):
    out = tmp_path / "results.jsonl"
    for shard in ("0/2", "1/2"):
        assert main(["predict", str(folder), "--labels", "happy, sad", "--out", str(out), "--shard", shard, *TINY]) == 0
    parts = [lines(tmp_path / f"results.{i}-of-2.jsonl") for i in range(2)]
    files = [line["file"] for part in parts for line in part]
    assert len(files) == len(set(files)) == 5 and all(parts), "each shard its own share, together all"


def test_windows_of_one_file_as_csv_rows_and_a_table(folder, tmp_path, capsys):
    table = tmp_path / "segments.csv"
    assert main(["predict", str(folder / "clip2.mp4"), "--labels", "calm=0, excited=1", "--segments", "window:1",
                 "--csv", str(table), *TINY]) == 0
    printed = capsys.readouterr().out
    with open(table, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and [float(r["start"]) for r in rows] == [0.0, 1.0]
    assert all(abs(float(r["p:calm"]) + float(r["p:excited"]) - 1) < 1e-4 for r in rows)
    assert all(r["sentiment"] for r in rows), "labels with anchors give each segment a sentiment"
    assert "2 segments:" in printed and "warning: no timed speech" not in printed


def test_utterances_without_speech_recognition_fall_back_to_windows_and_say_so(folder, capsys):
    assert main(["predict", str(folder / "clip0.mp4"), "--labels", "happy, sad", "--segments", "utterance", "--json",
                 *TINY]) == 0
    result = json.loads(capsys.readouterr().out)
    assert any("windows instead" in w for w in result["warnings"])
    assert [s["start"] for s in result["segments"]] == [0.0] and np.isclose(result["segments"][0]["end"], 2.0, atol=0.3)


def test_several_files_without_an_output_is_one_clear_line(folder, capsys):
    assert main(["predict", str(folder / "clip0.mp4"), str(folder / "clip1.mp4"), "--labels", "a, b", *TINY]) == 2
    assert "--out" in capsys.readouterr().err
