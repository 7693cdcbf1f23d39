"""Many files in one run: a folder to JSON lines and CSV, resumed (after a crash too, never with other
settings), sharded; one file by segments; the writer cut at every byte of a record."""

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from merclip.commands.cli import main
from merclip.errors import MerClipError
from merclip.media.sample_media import face_frames, speech_track, write_clip
from merclip.reading.batch import CsvTable, JsonLines

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
    """Every line of a JSON lines file, parsed (split at \\n only: U+2028 in a transcript is not a line end)."""
    return [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1]]


def rows(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


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


def test_a_file_added_or_removed_between_shards_runs_moves_no_other_file(tmp_path):
    """Shards are drawn by each file's path relative to the folder given: the same wherever it is mounted."""
    first = tmp_path / "first"
    for name in [f"clip{i:02d}.mp4" for i in range(10)] + ["sub/a.wav", "sub/b.png"]:
        (first / name).parent.mkdir(parents=True, exist_ok=True)
        (first / name).write_text("not media: each file is a quick error record")
    second = tmp_path / "elsewhere" / "second"  # the same folder on another machine, a file removed and one added
    shutil.copytree(first, second)
    (second / "clip00.mp4").unlink()
    (second / "sub" / "new.mp4").write_text("not media")

    def shards(folder):
        """Each file's shard of 3, by its name relative to the folder."""
        found = {}
        for index in range(3):
            out = folder.parent / f"{folder.name}.jsonl"
            assert main(["predict", str(folder), "--labels", "a, b", "--out", str(out), "--shard", f"{index}/3",
                         *TINY]) == 0
            names = [Path(line["file"]).relative_to(folder).as_posix() for line in lines(
                folder.parent / f"{folder.name}.{index}-of-3.jsonl")]
            assert not set(names) & set(found), "each file in one shard"
            found |= dict.fromkeys(names, index)
        return found

    before, after = shards(first), shards(second)
    assert sorted(before) == sorted(p.relative_to(first).as_posix() for p in first.rglob("*.*"))
    assert sorted(after) == sorted(p.relative_to(second).as_posix() for p in second.rglob("*.*"))
    assert len(set(before.values())) == 3, "every shard has files"
    assert {name: before[name] for name in after if name in before} == {
        name: shard for name, shard in after.items() if name in before}, "no file moved"


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


FAST = [*TINY, "--no-face", "--segments", "window:1"]  # no face search (the slow part); 2-3 rows per clip


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Clips a, b and c with speech, two to three seconds each (two or three one-second windows)."""
    root = tmp_path_factory.mktemp("three")
    for i, name in enumerate("abc"):
        write_clip(root / f"{name}.mp4", face_frames(10 + 2 * i, 64), fps=5, audio=speech_track(2.0 + 0.4 * i))
    return root


def batch(media, *outputs, labels="happy, sad", extra=()):
    return main(["predict", str(media), "--labels", labels, *[str(x) for x in outputs], *FAST, *extra])


@pytest.fixture(scope="module")
def reference(three, tmp_path_factory):
    """An uninterrupted run of `three` to JSON lines and CSV: what every resumed run must end with."""
    folder = tmp_path_factory.mktemp("reference")
    assert batch(three, "--out", folder / "r.jsonl", "--csv", folder / "r.csv") == 0
    return folder / "r.jsonl", folder / "r.csv"


def probs_by_file(path):
    return {line["file"]: line["result"]["probs"] for line in lines(path)}


def table_by_file(path):
    """Each file's rows (without the settings column, the same in every row)."""
    table = {}
    for row in rows(path):
        table.setdefault(row["file"], []).append({k: v for k, v in row.items() if k != "settings"})
    return table


def test_a_resumed_jsonl_run_cuts_off_the_line_a_crash_left_half_written(three, reference, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    first, second = reference[0].read_bytes().split(b"\n")[:2]
    out.write_bytes(first + b"\n" + second[: len(second) // 2])  # killed while writing b's line
    capsys.readouterr()
    assert batch(three, "--out", out) == 0
    assert "3 files in shard 0/1, 1 already done" in capsys.readouterr().err
    assert probs_by_file(out) == probs_by_file(reference[0]) and len(lines(out)) == 3, "each file once, lines whole"


def test_with_out_and_csv_a_file_is_done_only_when_both_hold_it_and_a_cut_csv_row_is_repaired(
        three, reference, tmp_path, capsys):
    out, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    out.write_bytes(reference[0].read_bytes())  # a, b and c have their JSON lines
    text = reference[1].read_bytes().decode("utf-8")  # as written: rows end with \r\n
    header, *records = text.split("\r\n")[:-1]
    a, c = ([r for r in records if r.startswith(str(three / name))] for name in "ac")
    assert len(c) == 3
    # b's rows never written (a crash after its JSON line); c's last row cut mid-write
    table.write_text("\r\n".join([header, *a, *c[:-1], c[-1][: len(c[-1]) // 2]]), encoding="utf-8", newline="")
    capsys.readouterr()
    assert batch(three, "--out", out, "--csv", table) == 0
    assert "3 files in shard 0/1, 1 already done" in capsys.readouterr().err
    assert table_by_file(table) == table_by_file(reference[1]), "b's rows added, c's rows whole and once"
    assert out.read_bytes() == reference[0].read_bytes(), "files the JSON lines held are not written again"


def test_another_label_set_is_refused_not_mixed_into_the_outputs(three, reference, tmp_path, capsys, monkeypatch):
    import merclip.api

    for flag, path in zip(("--out", "--csv"), reference):
        copy = tmp_path / path.name
        copy.write_bytes(path.read_bytes())
        monkeypatch.setattr(merclip.api, "load_model", lambda *a, **k: pytest.fail("refuse before loading models"))
        capsys.readouterr()
        assert batch(three, flag, copy, labels="calm, tense") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("merclip: error: ") and "Traceback" not in err, err
        assert "labels" in err and "calm, tense" in err and f"another {flag}" in err, err
        assert copy.read_bytes() == path.read_bytes(), "nothing written"


def test_a_batch_begun_in_fp32_is_not_resumed_in_fp16_on_a_gpu(three, reference, tmp_path, capsys, monkeypatch):
    import torch

    import merclip.api

    copy = tmp_path / "r.jsonl"
    copy.write_bytes(reference[0].read_bytes())  # written on this CPU, in fp32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resumed where CLIP runs in fp16
    monkeypatch.setattr(merclip.api, "load_model", lambda *a, **k: pytest.fail("refuse before loading models"))
    capsys.readouterr()
    assert batch(three, "--out", copy, extra=["--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'precision: "fp32" there, "fp16" now' in err, err
    assert copy.read_bytes() == reference[0].read_bytes(), "nothing written"


def test_every_record_names_the_settings_that_produced_it_and_a_resume_with_others_is_refused(
        three, tmp_path, capsys):
    out, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    assert batch(three / "a.mp4", "--out", out, "--csv", table, labels="happy|joyful, sad",
                 extra=["--frames", "4", "--templates", "a {} face."]) == 0
    settings = lines(out)[0]["settings"]
    assert settings["labels"] == "happy|joyful, sad" and settings["clip"] == "merclip-tiny:random"
    assert settings["templates"]["vision"] == ["a {} face."] and settings["templates"]["text"], "the templates used"
    assert settings["checkpoint"] is None and settings["segments"] == "window:1" and settings["frames"] == 4
    assert settings["no_face"] is True and settings["whisper"] == "none" and settings["transcript"] is None
    assert settings["precision"] == "fp32", "CLIP's precision on this device"
    assert all(json.loads(row["settings"]) == settings for row in rows(table)), "every CSV row names them too"
    capsys.readouterr()
    assert batch(three / "a.mp4", "--out", out, "--csv", table, labels="happy|joyful, sad",
                 extra=["--frames", "5", "--templates", "a {} face."]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "frames: 4 there, 5 now" in err, err


def test_a_segments_probs_is_a_list_aligned_with_the_labels_as_the_clips_is(three, tmp_path, capsys):
    assert main(["predict", str(three / "c.mp4"), "--labels", "happy, sad, calm", "--json", "--csv",
                 str(tmp_path / "t.csv"), *FAST]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["segments"]) == 3
    for part in result["segments"]:
        assert isinstance(part["probs"], list) and len(part["probs"]) == 3 and abs(sum(part["probs"]) - 1) < 1e-4
        assert part["top_label"] == result["labels"][int(np.argmax(part["probs"]))]
    assert [[float(row[f"p:{label}"]) for label in result["labels"]] for row in rows(tmp_path / "t.csv")] == [
        part["probs"] for part in result["segments"]], "CSV columns follow the labels"


def test_names_that_are_not_utf8_are_recorded_escaped_and_a_resume_skips_them(three, tmp_path, capsys):
    folder = os.fsencode(tmp_path / "media")
    os.mkdir(folder)
    shutil.copy(three / "a.mp4", os.path.join(folder, b"clip\xff.mp4"))  # a name in another system's encoding
    with open(os.path.join(folder, b"broken\xfe.mp4"), "wb") as broken:
        broken.write(b"not a video")
    out, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    assert batch(os.fsdecode(folder), "--out", out, "--csv", table) == 0
    assert "1 analysed, 1 failed" in capsys.readouterr().err
    media = str(tmp_path / "media")
    broken, clip = lines(out)  # in sorted order, read as UTF-8: the outputs stay valid text
    assert clip["file"] == f"{media}/clip\\udcff.mp4" and clip["result"]["labels"] == ["happy", "sad"]
    assert broken["file"] == f"{media}/broken\\udcfe.mp4" and "broken\\udcfe.mp4 is not a video" in broken["error"]
    assert {row["file"] for row in rows(table)} == {clip["file"], broken["file"]}
    written = out.read_bytes(), table.read_bytes()
    assert batch(os.fsdecode(folder), "--out", out, "--csv", table) == 0
    assert "2 already done" in capsys.readouterr().err
    assert (out.read_bytes(), table.read_bytes()) == written, "a resume finds both records"


SETTINGS = {"labels": "happy, sad", "frames": 8}


def record(name, texts):
    """A file's record with a segment per text (texts with quotes, commas, newlines and non-ASCII)."""
    segments = [{"start": float(i), "end": i + 1.0, "text": text, "top_label": "happy", "probs": [0.75, 0.25],
                 "sentiment": None} for i, text in enumerate(texts)]
    return {"file": f"/media/{name}", "result": {"labels": ["happy", "sad"], "probs": [0.6, 0.4], "top_label": "happy",
                                                "sentiment": None, "transcript": {"text": " ".join(texts)},
                                                "segments": segments}}


@pytest.mark.parametrize("kind", [JsonLines, CsvTable])
def test_a_crash_at_any_byte_of_a_record_leaves_a_file_that_resumes_to_whole_records(tmp_path, kind):
    path = tmp_path / "results"
    with kind(path, SETTINGS, ["happy", "sad"]) as output:
        output.add(record("a.mp4", ['Yes,\r\n "quoted", she said.', "and then\nmore"]))
    first = path.read_bytes()
    with kind(path, SETTINGS, ["happy", "sad"]) as output:
        output.add(record("b.mp4", ["line one\nline two", "x, y", "é 😀\u2028"]))
        two = len(path.read_bytes())
        output.add({"file": "/media/c.mp4", "error": "not a video"})
    whole = path.read_bytes()
    for cut in range(len(whole)):  # wherever a kill cuts the last write, the file resumes to the records before it
        path.write_bytes(whole[:cut])
        kept = whole[:two] if cut >= two else first if cut >= len(first) else b""
        with kind(path, SETTINGS, ["happy", "sad"]) as output:
            assert path.read_bytes() == kept, cut
            assert output.done == ({"/media/a.mp4", "/media/b.mp4"} if cut >= two else
                                   {"/media/a.mp4"} if cut >= len(first) else set()), cut
            if cut == two:
                output.add({"file": "/media/c.mp4", "error": "not a video"})
        if cut == two:
            assert path.read_bytes() == whole, "appended after a repair: the same bytes as without a crash"


def test_a_result_holding_a_non_finite_number_is_written_as_strict_json(tmp_path):
    """--out is read by strict JSON readers too, which refuse Python's bare NaN."""
    path = tmp_path / "r.jsonl"
    with JsonLines(path, SETTINGS, ["happy", "sad"]) as output:
        output.add(record("a.mp4", ["hello"]) | {"result": {"labels": ["happy", "sad"], "probs": [float("nan"), 0.4]}})
    line = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda name: pytest.fail(f"bare {name}"))
    assert line["result"]["probs"] == [None, 0.4] and line["non_finite"] == ["result.probs[0]"]
    with JsonLines(path, SETTINGS, ["happy", "sad"]) as output:
        assert output.done == {"/media/a.mp4"}, "a record with a null reads back as done"


def test_a_record_damaged_before_the_end_is_refused_not_cut_off(tmp_path):
    path = tmp_path / "r.jsonl"
    good = json.dumps({"file": "a", "settings": SETTINGS, "error": "x"})
    path.write_text(f'{good}\n{{"file": "b", "sett\n{good}\n', encoding="utf-8")
    with pytest.raises(MerClipError, match="line 2 is not a whole merclip record"):
        JsonLines(path, SETTINGS, ["happy", "sad"])
    path.write_text('{"file": "a", "result": {}}\n', encoding="utf-8")
    with pytest.raises(MerClipError, match="name no settings"):
        JsonLines(path, SETTINGS, ["happy", "sad"])


def test_two_runs_cannot_write_one_output_at_once(tmp_path):
    with CsvTable(tmp_path / "r.csv", SETTINGS, ["happy", "sad"]):
        with pytest.raises(MerClipError, match="another run is writing"):
            CsvTable(tmp_path / "r.csv", SETTINGS, ["happy", "sad"])
    CsvTable(tmp_path / "r.csv", SETTINGS, ["happy", "sad"]).close()


def test_a_checkpoint_retrained_in_place_is_other_settings(three, tmp_path, tiny_model, capsys):
    from safetensors.torch import load_file, save_file

    checkpoint = tiny_model.save(tmp_path / "run")
    out = tmp_path / "r.jsonl"
    assert batch(three / "a.mp4", "--out", out, extra=["--checkpoint", str(checkpoint)]) == 0
    settings = lines(out)[0]["settings"]
    assert settings["checkpoint"] == str(checkpoint.resolve()) and len(settings["checkpoint_sha256"]) == 16
    weights = load_file(checkpoint / "model.safetensors")
    first = next(iter(weights))
    save_file({**weights, first: weights[first] + 1}, str(checkpoint / "model.safetensors"))
    capsys.readouterr()
    assert batch(three / "a.mp4", "--out", out, extra=["--checkpoint", str(checkpoint)]) == 2
    assert "checkpoint_sha256: " in capsys.readouterr().err


def test_a_command_line_batch_keeps_no_clip_in_memory(folder, tmp_path, monkeypatch):
    """A run that cannot re-score has no reason to keep clips (crops included): memory stays flat file by file."""
    import merclip.reading.segment_reader

    readers = []

    class Watched(merclip.reading.segment_reader.SegmentReader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            readers.append(self)

    monkeypatch.setattr(merclip.reading.segment_reader, "SegmentReader", Watched)
    out = tmp_path / "results.jsonl"
    assert main(["predict", str(folder), "--labels", "happy, sad", "--segments", "window:1", "--out", str(out),
                 *TINY]) == 0
    assert len(lines(out)) == 5
    (reader,) = readers
    assert reader.kept_clips() == 0 and reader.analyzer.cached_clips() == 0
