"""Command line: `python -m merclip predict MEDIA... --labels "happy, sad, ..." [--json]`.

One file prints its result (with `--segments`, one per utterance or window too); several
files or folders go to `--out results.jsonl` and/or `--csv results.csv`, one record per file
as it finishes, resumable after any crash (merclip/reading/batch.py). Bad input ends with exit
status 2 and one line on stderr, never a traceback.
`bench` times the pipeline; `doctor` checks the host (merclip/commands/doctor.py).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from merclip.clip.loader import DEFAULT_CLIP
from merclip.errors import MerClipError
from merclip.head.result import strict_json
from merclip.limits import Limits
from merclip.speech.transcribe import DEFAULT_WHISPER

if TYPE_CHECKING:
    from merclip.labels.parsing import LabelSet
    from merclip.reading.segments import SegmentMode

BAR_WIDTH = 30
CLI_MAX_SECONDS = 1800.0  # the command line takes long recordings; the app keeps Limits' shorter default
CLI_MAX_MB = 4096.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m merclip", description="MER-CLIP multimodal emotion recognition")
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="analyse a video, audio file or image against labels")
    predict.add_argument("media", nargs="+", help="videos (mp4, webm, mov, mkv, avi), audio files (wav, mp3, m4a, "
                                                  "ogg), images, or folders of them")
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
    predict.add_argument("--max-seconds", type=float, default=CLI_MAX_SECONDS, help="analyse at most this much of a file")
    predict.add_argument("--max-mb", type=float, default=CLI_MAX_MB, help="refuse larger files")
    predict.add_argument("--deadline", type=float, default=Limits.deadline_seconds,
                         help="stop an analysis that runs longer than this many seconds")
    predict.add_argument("--cache-dir", default=None, help="keep analyses in this folder so a later run skips the encoders")
    predict.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    predict.add_argument("--segments", default=None, metavar="utterance|window[:SECONDS]",
                         help="also read the file utterance by utterance (or in windows, default 4 s)")
    predict.add_argument("--attention", action="store_true", help="include each segment's stage attention in the JSON")
    predict.add_argument("--out", default=None, help="JSON lines file: one line per file, appended as each finishes")
    predict.add_argument("--csv", default=None, help="CSV file: one row per segment (or per file)")
    predict.add_argument("--shard", default=None, help="i/n: take every n-th file from the i-th (default from torchrun)")
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench = commands.add_parser("bench", help="time every step against the models' own cost and a naive pipeline")
    bench.add_argument("--clip", default="ViT-B-32:random", help="CLIP SPEC (default: full-size, random weights)")
    bench.add_argument("--whisper", default=DEFAULT_WHISPER)
    bench.add_argument("--media", default=None, help="a clip to time (default: a built-in 10 s clip with face and speech)")
    bench.add_argument("--frames", type=int, default=Limits.frames)
    bench.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    bench.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is reported)")
    bench.add_argument("--no-scaling", action="store_true",
                       help="skip the long parts: the frames/length table, memory runs, segment and live figures")
    bench.add_argument("--json", action="store_true")
    doctor = commands.add_parser("doctor", help="check this host: versions, devices, weights, and a timed analysis "
                                                "on each device (exit status 1 when the app cannot run here)")
    doctor.add_argument("--clip", default=None, help=f"CLIP SPEC to time (default {DEFAULT_CLIP}, or ViT-B-32:random "
                                                      "when those weights are not cached and the hub is unreachable)")
    doctor.add_argument("--whisper", default=DEFAULT_WHISPER)
    doctor.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"bench": _bench, "doctor": _doctor, "predict": _predict}[args.command](args)
    except MerClipError as exc:
        print(f"merclip: error: {exc}", file=sys.stderr)
        return 2


def _predict(args: argparse.Namespace) -> int:
    from merclip.api import load_model
    from merclip.labels.parsing import parse_labels
    from merclip.media.probe import inspect_media
    from merclip.reading.analyzer import AnalysisOptions, Analyzer
    from merclip.reading.batch import CsvTable, JsonLines, media_files, pending, record_name, run_batch, shard_path
    from merclip.reading.disk_cache import DiskCache
    from merclip.reading.segment_reader import SegmentReader
    from merclip.reading.segments import SegmentMode
    from merclip.reading.shards import in_shard, shard_of

    labels = parse_labels(args.labels)  # fail on bad labels before loading any model
    mode = SegmentMode.parse(args.segments) if args.segments else None
    templates = {m: t for m, t in (("vision", args.templates), ("text", args.text_templates),
                                   ("audio", args.audio_templates)) if t is not None}
    limits = Limits(max_file_mb=args.max_mb, max_seconds=args.max_seconds, frames=args.frames,
                    deadline_seconds=args.deadline)
    options = AnalysisOptions(limits=limits, detect_faces=not args.no_face, transcript=args.transcript)
    files = media_files(args.media)
    many = len(args.media) > 1 or Path(args.media[0]).is_dir() or args.out is not None
    if many and args.out is None and args.csv is None:
        raise MerClipError("several files: say where the results go with --out results.jsonl and/or --csv results.csv")
    if args.out and args.csv and Path(args.out).resolve() == Path(args.csv).resolve():
        raise MerClipError("--out and --csv name the same file: give each its own")
    if not many:
        inspect_media(next(iter(files)), limits)  # a bad file is reported before seconds of model loading
    index, count = shard_of(args.shard) if many else (0, 1)
    settings = _settings(args, labels, mode, templates)
    with ExitStack() as stack:  # outputs checked (writable, same settings) and repaired before any model loads
        outputs = [stack.enter_context(kind(shard_path(Path(path), index, count), settings, labels.names))
                   for kind, path in ((JsonLines, args.out), (CsvTable, args.csv)) if path]
        disk_cache = DiskCache(args.cache_dir) if args.cache_dir else None
        # a command-line run never re-scores: it keeps no clip in memory, so a batch does not grow file by file
        analyzer = Analyzer(load_model(args.clip, args.checkpoint, args.device), whisper=args.whisper,
                            disk_cache=disk_cache, cache_size=0)
        reader = SegmentReader(analyzer, keep=0)

        def analyse(path: Path) -> dict:
            if mode is None:
                return analyzer.score(path, labels, templates, options).to_dict()
            whole, parts = reader.read(path, labels, mode, templates, options)
            return whole.to_dict() | {"segments": [part.to_dict(args.attention) for part in parts]}

        if many:
            mine = [path for path, name in files.items() if in_shard(name, index, count)]
            todo = pending(mine, outputs)
            print(f"merclip: {len(mine)} files in shard {index}/{count}, {len(mine) - len(todo)} already done",
                  file=sys.stderr)
            ok, failed = run_batch(todo, analyse, outputs, show_progress=not args.no_progress)
            print(f"merclip: {ok} analysed, {failed} failed (error lines in the output)", file=sys.stderr)
            return 0
        (file,) = files
        result = analyse(file)
        for output in outputs:  # --csv of one file: its rows, unless the table has them already
            if record_name(file) not in output.done:
                output.add({"file": record_name(file), "result": result})
    print(strict_json(result) if args.json else format_table(result))
    return 0


def _settings(args: argparse.Namespace, labels: LabelSet, mode: SegmentMode | None,
              templates: dict[str, str]) -> dict[str, Any]:
    """Everything that decides a result's numbers, named in every record of --out and --csv so a
    resumed run can be checked against it (the device through the precision it runs CLIP in: a batch
    begun on a GPU is not finished in fp32 on a CPU; the cache and the limits that only refuse or stop
    a file do not change the numbers). Read before any model loads."""
    from merclip.clip.loader import default_precision, resolve_device
    from merclip.head.checkpoint import CONFIG_FILE, HUB_PREFIX, WEIGHTS_FILE, checkpoint_folder, read_checkpoint_config
    from merclip.labels.templates import resolve_templates

    config = read_checkpoint_config(args.checkpoint) if args.checkpoint else None
    on_hub = bool(args.checkpoint) and args.checkpoint.startswith(HUB_PREFIX)
    checkpoint = args.checkpoint if on_hub else Path(args.checkpoint).resolve() if args.checkpoint else None
    digest = None
    if checkpoint is not None:  # its weights and config: a checkpoint retrained in place is another model
        folder, digest = checkpoint_folder(args.checkpoint), hashlib.sha256()
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            digest.update((folder / name).read_bytes())
    segments = None if mode is None else mode.kind if mode.kind == "utterance" else f"window:{mode.window_seconds:g}"
    return {
        "labels": ", ".join("|".join(label.synonyms) + ("" if label.anchor is None else f"={label.anchor!r}")
                            for label in labels.labels),
        "templates": resolve_templates(templates, base=config.templates if config else None),
        "clip": args.clip or (config.clip if config else DEFAULT_CLIP),
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "checkpoint_sha256": None if digest is None else digest.hexdigest()[:16],
        "precision": default_precision(resolve_device(args.device)),
        "whisper": args.whisper,
        "transcript": args.transcript,
        "segments": segments,
        "frames": args.frames,
        "no_face": args.no_face,
        "max_seconds": args.max_seconds,
    }


def _bench(args: argparse.Namespace) -> int:
    from merclip.bench.report import format_report, run_bench

    if args.repeat < 1 or not 1 <= args.frames <= Limits.max_frames:
        raise MerClipError(f"--repeat must be at least 1 and --frames within 1-{Limits.max_frames}")
    report = run_bench(args.clip, args.whisper, args.media, args.frames, args.device, args.repeat,
                       scaling=not args.no_scaling)
    print(strict_json(report) if args.json else format_report(report))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from merclip.commands.doctor import format_report, run_doctor

    report = run_doctor(args.clip, args.whisper)
    print(strict_json(report) if args.json else format_report(report))
    return 0 if report["ok"] else 1


def format_table(result: dict) -> str:
    """Labels sorted by probability with bars, then transcript, modalities, warnings, timings, and
    one line per segment when there are segments."""
    labels, probs = result["labels"], result["probs"]
    width = max(len(label) for label in labels)
    lines = [f"{labels[i]:<{width}}  {probs[i]:6.1%}  {'█' * round(probs[i] * BAR_WIDTH)}"
             for i in sorted(range(len(labels)), key=lambda i: -probs[i])]
    if result["sentiment"] is not None:
        lines.append(f"\nsentiment score: {result['sentiment']:+.2f}")
    text = (result["transcript"] or {}).get("text")
    lines.append(f"\ntranscript: {text if text else '(none)'}")
    modalities = result["modalities"]
    weights = ", ".join(f"{m} {w:.2f}" for m, w in modalities["prior_weights"].items())
    lines.append(f"modalities: {', '.join(modalities['used'])}" + (f" (CLIP prior weights: {weights})" if weights else ""))
    if modalities["missing"]:
        lines.append(f"missing: {', '.join(modalities['missing'])}")
    lines += [f"warning: {warning}" for warning in result["warnings"]]
    lines.append("timings: " + ", ".join(f"{k} {v:.0f} ms" for k, v in result["timings_ms"].items()))
    if result.get("segments"):
        lines.append(f"\n{len(result['segments'])} segments:")
        top = max(len(part["top_label"]) for part in result["segments"])
        for part in result["segments"]:
            score = "" if part["sentiment"] is None else f" {part['sentiment']:+.2f}"
            lines.append(f"{part['start']:7.1f}-{part['end']:<7.1f} {part['top_label']:<{top}} "
                         f"{max(part['probs']):4.0%}{score}  {part['text'][:80]}")
    return "\n".join(lines)
