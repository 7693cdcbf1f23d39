"""Start the MER-CLIP web app: `python app.py [--clip SPEC] [--checkpoint DIR] [--device auto|cpu|cuda]`."""

from __future__ import annotations

import argparse
import os

from merclip import MerClipError, load_model
from merclip.clip_loader import DEFAULT_CLIP


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--clip", default=None, help=f"CLIP SPEC (default {DEFAULT_CLIP}, or the checkpoint's)")
    parser.add_argument("--checkpoint", default=None, help="a folder written by train/ (model.safetensors + config.json)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from demo.image_page import build_image_page  # gradio takes seconds to import; parse flags first

    model, error = None, None
    try:
        model = load_model(args.clip, args.checkpoint, args.device)
    except MerClipError as exc:
        error = str(exc)
        print(f"merclip: {error}", flush=True)
    build_image_page(model, error).queue(default_concurrency_limit=2).launch(
        server_name=args.host, server_port=args.port, share=args.share
    )


if __name__ == "__main__":
    main()
