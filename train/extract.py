"""`python -m train.extract --manifest CSV --out DIR`: run the app's media pipeline and frozen
encoders over every clip once and keep the features.

Resumable (clips already written are skipped), shardable (`--shard i/n`, or one shard
per process under `torchrun`), with a progress bar and ETA. A clip that cannot be read
is listed in DIR/errors.jsonl and skipped; the rest go on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from merclip.api import load_model
from merclip.clip import DEFAULT_CLIP
from merclip.errors import MerClipError
from merclip.head import write_tensor_file
from merclip.limits import Limits
from merclip.reading import AnalysisOptions, Analyzer, in_shard, shard_of
from merclip.speech import DEFAULT_WHISPER
from train.manifest import FEATURES_DIR, INFO_FILE, SAMPLE_KEY, ManifestRow, read_manifest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train.extract", description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="CSV with path, split and label or score")
    parser.add_argument("--out", required=True, help="folder for the features (created; resumable)")
    parser.add_argument("--clip", default=DEFAULT_CLIP)
    parser.add_argument("--whisper", default=DEFAULT_WHISPER)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--frames", type=int, default=Limits.frames)
    parser.add_argument("--no-face", action="store_true")
    parser.add_argument("--labels", default=None, help="label text for classification (default: the manifest's labels)")
    parser.add_argument("--shard", default=None, help="i/n: this process takes the rows whose clip names hash to i (default from torchrun)")
    return parser.parse_args(argv)


def extract(args: argparse.Namespace) -> int:
    rows = read_manifest(args.manifest)
    index, count = shard_of(args.shard)
    out = Path(args.out)
    (out / FEATURES_DIR).mkdir(parents=True, exist_ok=True)
    info = {"clip": args.clip, "whisper": args.whisper, "frames": args.frames, "faces": not args.no_face,
            "labels": args.labels, "manifest": str(Path(args.manifest).resolve())}
    _check_same_settings(out / INFO_FILE, info)
    mine = [row for row in rows if in_shard(row.clip_name, index, count)]
    todo = [r for r in mine if not (out / FEATURES_DIR / f"{r.clip_name}.safetensors").exists()]
    print(f"extract: {len(mine) - len(todo)} of {len(mine)} clips of shard {index}/{count} already done", file=sys.stderr)
    if not todo:
        return 0
    analyzer = Analyzer(load_model(args.clip, device=args.device), whisper=args.whisper, cache_size=1)
    options = AnalysisOptions(limits=Limits(frames=args.frames), detect_faces=not args.no_face)
    failures = 0
    for row in tqdm(todo, desc=f"extract {index}/{count}", unit="clip"):
        try:
            analysis, _ = analyzer.analyse(row.path, options)
        except MerClipError as exc:
            failures += 1
            with open(out / f"errors-{index}.jsonl", "a", encoding="utf-8") as log:
                log.write(json.dumps({"path": str(row.path), "error": str(exc)}) + "\n")
            continue
        _write(out / FEATURES_DIR / f"{row.clip_name}.safetensors", row, analysis.features, analysis.warnings)
    print(f"extract: {len(todo) - failures} written, {failures} failed (see {out}/errors-{index}.jsonl)", file=sys.stderr)
    return 0


def _write(path: Path, row: ManifestRow, features, warnings: list[str]) -> None:
    tensors, meta = features.to_tensors()
    meta |= {"path": str(row.path), "split": row.split, "label": row.label, "score": row.score, "warnings": warnings}
    write_tensor_file(path, tensors, meta, SAMPLE_KEY)  # a clip is either fully written or not there: safe to resume


def _check_same_settings(info_file: Path, info: dict) -> None:
    if info_file.is_file():
        before = json.loads(info_file.read_text(encoding="utf-8"))
        changed = [k for k in ("clip", "whisper", "frames", "faces") if before.get(k) != info[k]]
        if changed:
            raise MerClipError(f"{info_file.parent} was extracted with other settings ({', '.join(changed)}); "
                               "use a new --out folder")
        return
    info_file.write_text(json.dumps(info, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    try:
        return extract(parse_args(argv))
    except MerClipError as exc:
        print(f"train.extract: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
