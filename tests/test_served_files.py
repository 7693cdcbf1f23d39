"""Every file the app serves is complete when it is fetched, also while other requests for the
same clip write their own answers (the crops of one clip are the same bytes for every visitor).

Many clients analyse the same clips at once, and each downloads every file of its answer
(gradio_client does, as a browser does) and checks the bytes: images decode, the JSON
parses and names its own labels. Any file rewritten in place while it is being sent shows
up here as a short or empty body, and as a traceback in the server's output.
"""

import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from demo.clip_tab import OUTPUT_NAMES
from merclip.media.sample_media import speech_clip

pytestmark = pytest.mark.slow
ROUNDS = 4
CLIENTS = 8


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    return [speech_clip(folder / "first.mp4", seconds=3), speech_clip(folder / "second.mp4", seconds=4)]


def analyse_and_check_every_file(url: str, media, labels: str) -> int:
    """One visitor's analysis; returns how many served files were downloaded and checked."""
    out = dict(zip(OUTPUT_NAMES, Client(url, verbose=False).predict(handle_file(str(media)), labels,
                                                                     api_name="/predict")))
    with open(out["download"], encoding="utf-8") as handle:
        assert json.load(handle)["labels"] == [label.strip() for label in labels.split(",")]
    for item in out["gallery"]:
        with open(item["image"], "rb") as handle:
            data = handle.read()
        Image.open(io.BytesIO(data)).load()  # raises on a truncated or empty file
    return 1 + len(out["gallery"])


def test_concurrent_visitors_of_the_same_clips_download_complete_files(tiny_app, clips):
    log_start = len(tiny_app.output())
    checked = 0
    with ThreadPoolExecutor(CLIENTS) as pool:
        for round_number in range(ROUNDS):
            same_clip = [(clips[0], f"happy, sad, n{i}") for i in range(CLIENTS)]
            two_clips = [(clips[i % 2], f"calm, tense, r{round_number}") for i in range(CLIENTS)]
            futures = [pool.submit(analyse_and_check_every_file, tiny_app.url, media, labels)
                       for media, labels in same_clip + two_clips]
            checked += sum(future.result() for future in futures)
    assert checked == ROUNDS * 2 * CLIENTS * 9, "every answer had its result file and 8 crops"
    assert "Traceback" not in tiny_app.output()[log_start:]
