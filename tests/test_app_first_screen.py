"""The first screen of a running app: the example a new page opens with stays re-scorable."""

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from demo.clip_tab import OUTPUT_NAMES, PAGE_OUTPUT_NAMES
from merclip.reading.segment_reader import KEPT_CLIPS
from tests.page_events import page_event

pytestmark = pytest.mark.slow
OPENED = ("video", "preset", "labels", *OUTPUT_NAMES, "stale", "colours")  # what a new page is given


def test_the_example_a_page_opens_with_is_re_scored_after_more_clips_than_the_server_keeps(tiny_app, tmp_path):
    opened = dict(zip(OPENED, page_event(tiny_app.url, None, "then", {}, api_name="on_load").outputs))
    assert "Example:" in opened["heading"] and opened["clip_id"]
    client = Client(tiny_app.url, verbose=False)
    noise = np.random.default_rng(0)
    for i in range(KEPT_CLIPS + 1):  # visitors' clips, more than the analyses kept in memory (as many as the clips)
        Image.fromarray(noise.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        client.predict(handle_file(str(tmp_path / f"{i}.png")), "happy, sad", api_name="/predict")
    entered = page_event(tiny_app.url, "labels", "submit", {"clip-id": opened["clip_id"], "labels": "calm, tense"})
    shown = dict(zip(PAGE_OUTPUT_NAMES, entered.outputs))
    assert shown["label_note"] == "", shown["label_note"]
    assert shown["result"]["labels"] == ["calm", "tense"] and shown["clip_id"] == opened["clip_id"]
