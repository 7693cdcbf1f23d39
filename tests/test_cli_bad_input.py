"""`python -m merclip predict` on bad input: exit 2 with one line, or a result with a warning."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from merclip.commands.cli import main
from merclip.media.sample_media import face_frames, speech_clip, write_clip

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--clip", "merclip-tiny:random", "--device", "cpu"]


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("cli") / "clip.mp4", seconds=4)


def run(capsys, media, *extra, labels="happy, sad"):
    status = main(["predict", str(media), "--labels", labels, "--json", *TINY, *extra])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, out, err, fragment):
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("merclip: error: ") and fragment in err, err


def assert_result_with_warning(status, out, fragment):
    assert status == 0
    result = json.loads(out)
    assert any(fragment in w for w in result["warnings"]), result["warnings"]
    return result


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("empty.mp4", b"", "empty (0 bytes)"),
        ("noise.mp4", np.random.default_rng(0).bytes(50_000), "not a video, audio or image file"),
        ("notes.mp4", b"this is a text file, not a video\n" * 100, "not a video, audio or image file"),
    ],
)
def test_unreadable_files_are_one_line_errors(capsys, tmp_path, name, content, fragment):
    (tmp_path / name).write_bytes(content)
    assert_one_line_error(*run(capsys, tmp_path / name), fragment)


def test_missing_path_and_directory(capsys, tmp_path):
    assert_one_line_error(*run(capsys, tmp_path / "absent.mp4"), "file not found")
    assert_one_line_error(*run(capsys, tmp_path), "several files: say where the results go with --out")


def test_truncated_mp4_is_an_error_or_a_warned_result(capsys, tmp_path, clip_path):
    data = clip_path.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])
    status, out, err = run(capsys, tmp_path / "half.mp4")
    if status == 2:
        assert_one_line_error(status, out, err, "half.mp4")
    else:
        assert_result_with_warning(status, out, "truncated")


def test_video_without_audio_warns(capsys, tmp_path):
    write_clip(tmp_path / "mute.mp4", face_frames(10, 128), fps=5)
    result = assert_result_with_warning(*run(capsys, tmp_path / "mute.mp4")[:2], "no audio track")
    assert result["modalities"]["used"] == ["vision"]


def test_silent_audio_track_warns(capsys, tmp_path):
    write_clip(tmp_path / "silent.mp4", face_frames(10, 128), fps=5, audio=np.zeros(32_000, np.float32))
    result = assert_result_with_warning(*run(capsys, tmp_path / "silent.mp4")[:2], "silent")
    assert result["modalities"]["used"] == ["vision"]


def test_video_without_a_face_warns(capsys, tmp_path):
    gradient = np.tile(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], (96, 1, 3))
    write_clip(tmp_path / "noface.mp4", [np.roll(gradient, i, axis=1) for i in range(10)], fps=5)
    assert_result_with_warning(*run(capsys, tmp_path / "noface.mp4")[:2], "no face found in any frame")


def test_one_pixel_video(capsys, tmp_path):
    write_clip(tmp_path / "pixel.avi", [np.full((1, 1, 3), 128, np.uint8)] * 3, fps=3, video_codec="rawvideo")
    result = assert_result_with_warning(*run(capsys, tmp_path / "pixel.avi")[:2], "no face found")
    assert result["modalities"]["used"] == ["vision"]


def test_4k_frames_are_downscaled(capsys, tmp_path):
    from merclip.api import load_model
    from merclip.reading.analyzer import Analyzer

    big = np.asarray(face_frames(1, 2160)[0])
    frame = np.zeros((2160, 3840, 3), np.uint8)
    frame[:, 840:3000] = big
    write_clip(tmp_path / "uhd.mp4", [frame, frame], fps=2)
    status, out, _ = run(capsys, tmp_path / "uhd.mp4")
    assert status == 0
    analysis, _ = Analyzer(load_model("merclip-tiny:random", device="cpu"), whisper="none").analyse(tmp_path / "uhd.mp4")
    assert max(max(c.shape[:2]) for c in analysis.crops) <= 1280


def test_clip_longer_than_the_limit_is_cut_with_a_warning(capsys, clip_path):
    result = assert_result_with_warning(*run(capsys, clip_path, "--max-seconds", "2", "--whisper", "none")[:2],
                                        "only the first 2 s")
    assert max(result["stages"][-1]["elements"]) < 2


def test_non_ascii_file_name(capsys, tmp_path, clip_path):
    target = tmp_path / "émotion 😀 clip.mp4"
    shutil.copy(clip_path, target)
    status, out, _ = run(capsys, target, "--whisper", "none")
    assert status == 0 and json.loads(out)["modalities"]["used"] == ["audio", "vision"]


@pytest.mark.parametrize(
    "labels, fragment",
    [(" , ", "no labels given"), (",".join(f"l{i}" for i in range(65)), "at most 64"), ("a=1, b", "every label")],
)
def test_bad_labels_are_one_line_errors(capsys, clip_path, labels, fragment):
    assert_one_line_error(*run(capsys, clip_path, labels=labels), fragment)


def test_bad_frames_and_templates_are_one_line_errors(capsys, clip_path):
    assert_one_line_error(*run(capsys, clip_path, "--frames", "99"), "between 1 and 32")
    assert_one_line_error(*run(capsys, clip_path, "--templates", "a face"), "has no '{}'")


def test_duplicate_labels_warn(capsys, clip_path):
    assert_result_with_warning(*run(capsys, clip_path, "--whisper", "none", labels="happy, Happy, sad")[:2],
                               "duplicate label")


def test_real_process_exits_2_without_traceback(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    process = subprocess.run(
        [sys.executable, "-m", "merclip", "predict", str(tmp_path / "empty.mp4"), "--labels", "happy"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert process.returncode == 2
    assert "Traceback" not in process.stderr and process.stderr.strip().count("\n") == 0
    assert "empty" in process.stderr


def test_table_output_shows_bars_transcript_and_timings(capsys, clip_path):
    status = main(["predict", str(clip_path), "--labels", "happy, sad", *TINY])
    out = capsys.readouterr().out
    assert status == 0
    assert "█" in out and "transcript: I sleep with a dagger" in out and "timings:" in out


@pytest.mark.parametrize("flag", ["--out", "--csv"])
@pytest.mark.parametrize("where, fragment", [("absent/results.x", "No such file or directory"),
                                             (".", "Is a directory")])
def test_an_output_that_cannot_be_written_is_refused_before_loading_models(
        capsys, tmp_path, clip_path, monkeypatch, flag, where, fragment):
    import merclip.api

    monkeypatch.setattr(merclip.api, "load_model", lambda *a, **k: pytest.fail("models loaded before the outputs"))
    status, out, err = run(capsys, clip_path, flag, str(tmp_path / where))
    assert_one_line_error(status, out, err, fragment)
    assert flag in err and str(tmp_path) in err
