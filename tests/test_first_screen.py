"""The page's first screen: the example's analysis, tried again after a failure, but not at every visit."""

import time

import gradio as gr

from demo import first_screen
from demo.clip_tab import OUTPUT_NAMES, STALE_NOTE, AnalysisService
from demo.first_screen import FirstScreen
from demo.model_store import ModelChoice, ModelStore
from demo.palette import LabelColours
from demo.presets import DEFAULT_PRESET, PRESETS
from merclip import load_model
from tests.conftest import TINY

OPENED = ("video", "preset", "labels", *OUTPUT_NAMES, "stale", "colours")  # what a new page is given


def test_an_example_that_could_not_be_analysed_is_tried_again_by_a_later_visit_after_a_back_off(
        tmp_path, astronaut, monkeypatch):
    astronaut.save(tmp_path / "face.png")
    store = ModelStore(ModelChoice(TINY, "none", "trained"), "cpu", checkpoints={"trained": str(tmp_path / "trained")})
    screen = FirstScreen(AnalysisService(store, tmp_path / "example"), tmp_path / "face.png", "Custom", "happy, sad",
                         "A face")
    assert screen.analyse_example() is None, "its checkpoint is not there (yet)"
    load_model(TINY, device="cpu").save(tmp_path / "trained")  # the cause goes away
    assert screen.analyse_example() is None, "not tried again at once: each visit would wait for another failure"
    an_hour_later = time.monotonic() + 3600
    monkeypatch.setattr(first_screen, "monotonic", lambda: an_hour_later, raising=False)
    opened = dict(zip(OPENED, screen.on_load(LabelColours(), None, None, DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])))
    assert "Example: A face" in opened["heading"] and opened["result"]["labels"] == ["happy", "sad"]


def test_a_late_example_keeps_what_the_visitor_set_meanwhile(tmp_path, astronaut):
    astronaut.save(tmp_path / "face.png")
    store = ModelStore(ModelChoice(TINY, "none"), "cpu")
    screen = FirstScreen(AnalysisService(store, tmp_path / "example"), tmp_path / "face.png", "Custom", "happy, sad",
                         "A face")
    untouched = dict(zip(OPENED, screen.on_load(LabelColours(), None, None, DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])))
    assert untouched["labels"] == "happy, sad" and untouched["preset"] == "Custom" and untouched["stale"] == gr.skip()
    for video, other in (("mine.mp4", None), (None, "mine.png")):  # the visitor's media: nothing of theirs replaced
        kept = screen.on_load(LabelColours(), video, other, DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])
        assert all(value == gr.skip() for value in kept[:-1]), "no input, no result replaced"
    typed = dict(zip(OPENED, screen.on_load(LabelColours(), None, None, "Custom", "calm, tense")))
    assert typed["labels"] == gr.skip() and typed["preset"] == gr.skip(), "the visitor's labels stay in the box"
    assert typed["stale"] == STALE_NOTE and "Example: A face" in typed["heading"], "the example, marked as for other labels"
