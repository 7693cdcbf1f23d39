"""`python -m demo.page_bench`: what a visitor waits for between Enter (or choosing an utterance) and
every figure updated, measured through the page's own handlers, with the figures encoded as
Gradio encodes them for the browser and the result files written. Network and browser
drawing are not included: they are the same few kilobytes whatever the model does. The page's
figures are measured by the page's own command: the core's bench (`python -m merclip bench`) never
imports the app.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from demo.clip_tab import OUTPUT_NAMES, AnalysisService
from demo.first_screen import encoded_for_browser
from demo.model_store import ModelChoice, ModelStore
from demo.palette import LabelColours
from demo.views import WHOLE_CLIP
from merclip.media import speech_clip
from merclip.speech import DEFAULT_WHISPER

SEVEN = ("angry, disgusted, fearful, happy, neutral, sad, surprised", "calm, excited, annoyed, proud, bored, tense, shy")
MANY = 64
RUNS = 5


def page_figures(clip: str, whisper: str, device: str, folder: Path) -> dict:
    """Median ms of the page's re-score (7 and 64 labels, 10 s clip) and of choosing an utterance
    (a clip of 25 utterances or more), each from the handler's call to the page's data."""
    service = AnalysisService(ModelStore(ModelChoice(clip, whisper, None), device), folder / "served")
    colours = LabelColours()
    short = _analysed(service, speech_clip(folder / "page10.mp4", seconds=10), colours)
    many = [", ".join(f"feeling number {i}{suffix}" for i in range(MANY)) for suffix in ("", " again")]
    long_clip = speech_clip(folder / "page120.mp4", seconds=120, fps=10, size=256)  # 25 utterances
    long = _analysed(service, long_clip, colours)
    choices = service.on_menu_choice(long, SEVEN[0], "", "", "", WHOLE_CLIP, colours)[
        OUTPUT_NAMES.index("segment_choice")]["choices"]
    return {
        "rescore_7_labels_ms": _median(lambda i: service.on_menu_choice(short, SEVEN[i % 2], "", "", "", WHOLE_CLIP,
                                                                        colours)),
        "rescore_64_labels_ms": _median(lambda i: service.on_menu_choice(short, many[i % 2], "", "", "", WHOLE_CLIP,
                                                                         colours)),
        "utterances": len(choices) - 1,
        "choose_utterance_ms": _median(lambda i: service.on_menu_choice(long, SEVEN[0], "", "", "",
                                                                        choices[1 + i % (len(choices) - 1)], colours)),
    }


def _analysed(service: AnalysisService, path: Path, colours: LabelColours) -> str:
    outputs = service.on_analyse(str(path), None, SEVEN[0], "", "", "", 8, True, "", None, None, None, colours,
                                 progress=lambda *args, **kwargs: None)
    return outputs[OUTPUT_NAMES.index("clip_id")]


def _median(handler) -> float:
    """Median ms over RUNS calls of `handler(i)`, each with its figures encoded for the browser."""
    times = []
    for i in range(RUNS):
        started = time.perf_counter()
        for value in handler(i):
            encoded_for_browser(value)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demo.page_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="ViT-B-32:random", help="CLIP SPEC (default: full-size, random weights)")
    parser.add_argument("--whisper", default=DEFAULT_WHISPER, help="Whisper model (\"none\": no transcription)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="merclip-page-bench-") as scratch:
        print(json.dumps(page_figures(arguments.clip, arguments.whisper, arguments.device, Path(scratch))))


if __name__ == "__main__":
    main()
