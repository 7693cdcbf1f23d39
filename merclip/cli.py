"""Command line: `python -m merclip predict MEDIA --labels "happy, sad, ..." [--json]`.

Bad input ends with exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from merclip.clip_loader import DEFAULT_CLIP
from merclip.errors import MerClipError
from merclip.limits import Limits
from merclip.transcribe import DEFAULT_WHISPER

BAR_WIDTH = 30


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m merclip", description="MER-CLIP multimodal emotion recognition")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="analyse a video, audio file or image against labels")
    predict.add_argument("media", help="a video (mp4, webm, mov, mkv, avi), audio file (wav, mp3, m4a, ogg) or image")
    predict.add_argument("--labels", required=True, help='comma-separated, synonyms with |, e.g. "happy|joyful, sad"')
    predict.add_argument("--clip", default=None, help=f"CLIP SPEC (default {DEFAULT_CLIP}, or the checkpoint's)")
    predict.add_argument("--checkpoint", default=None, help="a trained MER-CLIP folder (model.safetensors + config.json)")
    predict.add_argument("--whisper", default=DEFAULT_WHISPER, help="bundled (offline tiny.en), a size name, a folder, or none")
    predict.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    predict.add_argument("--frames", type=int, default=Limits.frames, help=f"video frames to sample (1-{Limits.max_frames})")
    predict.add_argument("--no-face", action="store_true", help="use whole frames instead of detected faces")
    predict.add_argument("--templates", default=None, help='face templates separated by ";", each with {} for the label')
    predict.add_argument("--text-templates", default=None, help="templates for the transcript (text) stage")
    predict.add_argument("--audio-templates", default=None, help="templates for the voice (audio) stage")
    predict.add_argument("--transcript", default=None, help="use this text instead of speech recognition")
    predict.add_argument("--max-seconds", type=float, default=Limits.max_seconds, help="analyse at most this much")
    predict.add_argument("--max-mb", type=float, default=Limits.max_file_mb, help="refuse larger files")
    predict.add_argument("--deadline", type=float, default=Limits.deadline_seconds,
                         help="stop an analysis that runs longer than this many seconds")
    predict.add_argument("--cache-dir", default=None, help="keep analyses in this folder so a later run skips the encoders")
    predict.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench = commands.add_parser("bench", help="time every step against the models' own cost and a naive pipeline")
    bench.add_argument("--clip", default="ViT-B-32:random", help="CLIP SPEC (default: full-size, random weights)")
    bench.add_argument("--whisper", default=DEFAULT_WHISPER)
    bench.add_argument("--media", default=None, help="a clip to time (default: a built-in 10 s clip with face and speech)")
    bench.add_argument("--frames", type=int, default=Limits.frames)
    bench.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    bench.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is reported)")
    bench.add_argument("--no-scaling", action="store_true", help="skip the frames/length table and the 120 s memory run")
    bench.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _bench(args) if args.command == "bench" else _predict(args)
    except MerClipError as exc:
        print(f"merclip: error: {exc}", file=sys.stderr)
        return 2


def _predict(args: argparse.Namespace) -> int:
    from merclip.analysis import AnalysisOptions, Analyzer
    from merclip.api import load_model
    from merclip.disk_cache import DiskCache
    from merclip.labels import parse_labels
    from merclip.media_probe import inspect_media

    labels = parse_labels(args.labels)  # fail on bad labels before loading any model
    templates = {m: t for m, t in (("vision", args.templates), ("text", args.text_templates),
                                   ("audio", args.audio_templates)) if t is not None}
    limits = Limits(max_file_mb=args.max_mb, max_seconds=args.max_seconds, frames=args.frames,
                    deadline_seconds=args.deadline)
    options = AnalysisOptions(limits=limits, detect_faces=not args.no_face, transcript=args.transcript)
    inspect_media(args.media, limits)  # a bad file is reported before seconds of model loading
    disk_cache = DiskCache(args.cache_dir) if args.cache_dir else None
    analyzer = Analyzer(load_model(args.clip, args.checkpoint, args.device), whisper=args.whisper, disk_cache=disk_cache)
    prediction = analyzer.predict(args.media, labels, templates, options)
    if args.json:
        print(json.dumps(prediction.to_dict(), ensure_ascii=False))
    else:
        print(format_table(prediction))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from merclip.bench import format_report, run_bench

    if args.repeat < 1 or not 1 <= args.frames <= Limits.max_frames:
        raise MerClipError(f"--repeat must be at least 1 and --frames within 1-{Limits.max_frames}")
    report = run_bench(args.clip, args.whisper, args.media, args.frames, args.device, args.repeat,
                       scaling=not args.no_scaling)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def format_table(prediction) -> str:
    """Labels sorted by probability with bars, then transcript, modalities, warnings and timings."""
    width = max(len(label) for label in prediction.labels)
    order = sorted(range(len(prediction.labels)), key=lambda i: -prediction.probs[i])
    lines = []
    for i in order:
        p = prediction.probs[i]
        lines.append(f"{prediction.labels[i]:<{width}}  {p:6.1%}  {'█' * round(p * BAR_WIDTH)}")
    if prediction.sentiment is not None:
        lines.append(f"\nsentiment score: {prediction.sentiment:+.2f}")
    text = (prediction.transcript or {}).get("text")
    lines.append(f"\ntranscript: {text if text else '(none)'}")
    weights = ", ".join(f"{m} {w:.2f}" for m, w in prediction.prior_weights.items())
    lines.append(f"modalities: {', '.join(prediction.modalities)}" + (f" (CLIP prior weights: {weights})" if weights else ""))
    if prediction.missing:
        lines.append(f"missing: {', '.join(prediction.missing)}")
    for warning in prediction.warnings:
        lines.append(f"warning: {warning}")
    lines.append("timings: " + ", ".join(f"{k} {v:.0f} ms" for k, v in prediction.timings_ms.items()))
    return "\n".join(lines)
