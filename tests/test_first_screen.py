"""The page's first screen: the example's analysis, tried again after a failure, but not at every visit."""

import time

from demo import first_screen
from demo.first_screen import FirstScreen
from demo.models import ModelChoice, ModelStore
from demo.palette import LabelColours
from demo.service import OUTPUT_NAMES, AnalysisService
from merclip import load_model
from tests.conftest import TINY

OPENED = ("video", "preset", "labels", *OUTPUT_NAMES, "colours")  # what a new page is given


def test_an_example_that_could_not_be_analysed_is_tried_again_by_a_later_visit_after_a_back_off(
        tmp_path, astronaut, monkeypatch):
    astronaut.save(tmp_path / "face.png")
    store = ModelStore(ModelChoice(TINY, "none", "trained"), "cpu", checkpoints={"trained": str(tmp_path / "trained")})
    screen = FirstScreen(AnalysisService(store, tmp_path / "example"), tmp_path / "face.png", "Custom", "happy, sad",
                         "A face")
    assert screen.prepare() is None, "its checkpoint is not there (yet)"
    load_model(TINY, device="cpu").save(tmp_path / "trained")  # the cause goes away
    assert screen.prepare() is None, "not tried again at once: each visit would wait for another failure"
    an_hour_later = time.monotonic() + 3600
    monkeypatch.setattr(first_screen, "monotonic", lambda: an_hour_later, raising=False)
    opened = dict(zip(OPENED, screen.on_load(LabelColours())))
    assert "Example: A face" in opened["heading"] and opened["result"]["labels"] == ["happy", "sad"]
