"""Start the MER-CLIP web app: `python app.py [--clip SPEC] [--whisper SPEC] [--checkpoint DIR] [--device ...]`.

Also the entry point of the Hugging Face Space (README front matter): Spaces sets
GRADIO_SERVER_NAME/PORT, which the defaults below honour.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from merclip.clip import DEFAULT_CLIP
from merclip.limits import Limits
from merclip.speech import DEFAULT_WHISPER


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--clip", default=None, help=f"CLIP SPEC (default {DEFAULT_CLIP}, or the checkpoint's)")
    parser.add_argument("--whisper", default=DEFAULT_WHISPER, help="bundled (offline tiny.en), a size name, a folder, or none")
    parser.add_argument("--checkpoint", default=None, help="a folder written by train/ (model.safetensors + config.json)")
    parser.add_argument("--checkpoints-dir", default="checkpoints", help="offer every checkpoint folder found here")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cache-dir", default=None, help="keep clip analyses on disk here (default: memory only)")
    parser.add_argument("--max-mb", type=float, default=Limits.max_file_mb, help="largest upload accepted")
    parser.add_argument("--max-seconds", type=float, default=Limits.max_seconds, help="analyse at most this much of a clip")
    parser.add_argument("--max-sessions", type=int, default=200,
                        help="visitors' page state kept in memory (~1 MB each); the oldest beyond this are forgotten")
    parser.add_argument("--deadline", type=float, default=Limits.deadline_seconds,
                        help="stop an analysis that runs longer than this many seconds (the worker is then free again)")
    return parser.parse_args(argv)


def private_workspace() -> Path:
    """A folder only this server's user can read (mkdtemp makes it 0700) for uploads and results,
    removed when the server stops, also on SIGTERM (how Spaces and service managers stop it).
    Gradio reads GRADIO_TEMP_DIR when it is imported, so this runs before that import; an
    operator's own GRADIO_TEMP_DIR is kept."""
    workspace = Path(tempfile.mkdtemp(prefix="merclip-app-"))
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workspace / "uploads"))
    atexit.register(shutil.rmtree, workspace, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # runs the atexit clean-up
    return workspace


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workspace = private_workspace()
    # gradio and torch take seconds to import: flags are parsed first so --help is instant
    from demo import zero_gpu  # first: on a ZeroGPU Space, `spaces` must be imported before CUDA is touched
    from demo import style
    from demo.clip_tab import AnalysisService
    from demo.first_screen import ExampleStore, FirstScreen
    from demo.live_tab import DEVICE_NOTE_HEAD, MICROPHONE_FOLLOWS_CAMERA_HEAD, live_service
    from demo.model_store import ModelChoice, ModelStore, find_checkpoints
    from demo.page import ASSETS, EXAMPLES, build_page, page_head
    from demo.presets import PRESETS
    from merclip import MerClipError
    from merclip.head import read_checkpoint_config
    from merclip.reading import DiskCache

    clip = args.clip or DEFAULT_CLIP
    if args.checkpoint and not args.clip:
        try:
            clip = read_checkpoint_config(args.checkpoint).clip
        except MerClipError:
            pass  # the store reports the checkpoint's problem in the page
    checkpoints = find_checkpoints(args.checkpoints_dir, args.checkpoint)
    default = ModelChoice(clip, args.whisper, Path(args.checkpoint).name if args.checkpoint else None)
    store = ModelStore(default, args.device, DiskCache(args.cache_dir) if args.cache_dir else None, checkpoints,
                       place=zero_gpu.ZeroGpuModel if zero_gpu.active() else None)
    if zero_gpu.active():  # ZeroGPU records models put on "cuda" only in this thread, and only before launch
        try:
            store.analyzer(default)
        except MerClipError:
            pass  # the page says why
    store.load_default_in_background()

    limits = Limits(max_file_mb=args.max_mb, max_seconds=args.max_seconds, deadline_seconds=args.deadline)
    live = live_service(store, workspace / "live")
    live.prepare_in_background()  # live mode's Whisper process, ready before a visitor's first words
    # the example is analysed by the models the Live tab scores with: the start-up ones, or on ZeroGPU (which
    # lends a GPU only inside a visitor's request) their CPU copy
    example = ExampleStore(live.analyzer, store.default)
    clip_path, preset, title = EXAMPLES[0]
    first_screen = FirstScreen(AnalysisService(example, workspace / "example", limits), ASSETS / clip_path, preset,
                               PRESETS[preset], title)
    first_screen.analyse_example_in_background()
    page = build_page(store, AnalysisService(store, workspace / "served", limits, also_holding=[example]), live,
                      first_screen)
    page.queue(default_concurrency_limit=2, max_size=64).launch(
        server_name=args.host, server_port=args.port, share=args.share,
        max_file_size=f"{int(limits.max_file_mb)}mb", allowed_paths=[str(ASSETS)],
        state_session_capacity=args.max_sessions,  # Gradio's default, 10,000, would grow to ~10 GB
        theme=style.theme(), css=style.CSS, head=DEVICE_NOTE_HEAD + MICROPHONE_FOLLOWS_CAMERA_HEAD + page_head(limits.max_file_mb),
    )


if __name__ == "__main__":
    main()
