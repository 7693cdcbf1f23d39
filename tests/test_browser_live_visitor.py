"""The Live tab as a visitor meets it, in Chromium at a laptop's and a phone's size, with a fake camera and microphone.

One app and one browser serve every test. What is checked is what a visitor sees: "Analyse the last seconds"
pressed before the camera started says why beside the button, without an error toast, and the note goes once
the camera runs; the Heard box says "listening…" from Record until the first words; the rolling chart reads in
seconds ago, fits its values, names each line at its end in text a phone can read, and keeps the lines of the
labels that stay when the labels change.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.sample_media import face_frames, recordings
from tests.app_server import AppServer
from tests.test_browser import CHROMIUM_ARGS, chromium, first_screen, load  # noqa: F401 -- the fixture
from tests.test_browser_page import VIEWPORTS
from tests.test_browser_webcam import write_wav, write_y4m

pytestmark = pytest.mark.slow
HISTORY_TEXTS = "els => els.map(e => ({text: e.textContent, box: e.getBoundingClientRect().toJSON(), " \
                "size: parseFloat(getComputedStyle(e).fontSize)}))"
LINE_STARTS = "els => Object.fromEntries(els.map(e => [e.dataset.label, parseFloat(e.getAttribute('points'))]))"


@pytest.fixture(scope="module")
def server():
    app = AppServer("--clip", "merclip-tiny:random", "--device", "cpu")
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):  # noqa: F811
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("devices")
    write_y4m(folder / "cam.y4m", face_frames(60, size=320))
    speech = recordings(("heath_ledger.mp3",))[0]
    write_wav(folder / "voice.wav", np.concatenate([speech, np.zeros(SAMPLE_RATE, np.float32)]))
    devices = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
               f"--use-file-for-fake-video-capture={folder / 'cam.y4m'}",
               f"--use-file-for-fake-audio-capture={folder / 'voice.wav'}"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS + devices)
        yield launched
        launched.close()


def _live_tab(browser, server, viewport: str):
    page = browser.new_context(viewport=VIEWPORTS[viewport], permissions=["camera", "microphone"]).new_page()
    load(page, server.url)
    first_screen(page)
    page.get_by_role("tab", name="Live webcam").click()
    page.locator("#live-camera").get_by_text("Click to Access Webcam").click()
    page.locator("#live-camera").get_by_label("capture photo").wait_for()
    return page


def _record(page) -> None:
    page.locator("#live-camera").get_by_label("capture photo").click()  # Record: the camera and the microphone


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_analysing_before_the_camera_started_is_said_beside_the_button_without_a_toast(browser, server, viewport):
    page = _live_tab(browser, server, viewport)
    button, note = page.locator("#analyse-last"), page.locator("#live-analyse-note")
    button.click()
    note.get_by_text("Nothing recorded yet").wait_for(timeout=10_000)
    said = note.inner_text()
    toasts = page.locator(".toast-body").count()
    near = button.bounding_box(), note.bounding_box()
    _record(page)
    page.locator("#live-bars svg .mark-rect path").first.wait_for(timeout=60_000)
    button.click()
    page.wait_for_function("!document.querySelector('#live-analyse-note').innerText.trim()", timeout=10_000)
    page.context.close()
    assert "press Record" in said and toasts == 0, (said, toasts)
    (bx, by, bw, bh), (nx, ny, nw, nh) = ((b["x"], b["y"], b["width"], b["height"]) for b in near)
    assert by + bh <= ny <= by + bh + 40 and nx < bx + bw and bx < nx + nw, f"under the button: {near}"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_heard_box_says_listening_and_the_chart_reads_in_seconds_ago_and_keeps_lines_across_labels(
        browser, server, viewport):
    page = _live_tab(browser, server, viewport)
    _record(page)
    heard = page.locator("#live-transcript textarea")
    page.wait_for_function("document.querySelector('#live-transcript textarea').value === 'listening…'",
                           timeout=10_000)
    page.locator("#live-history polyline").first.wait_for(timeout=60_000)
    page.locator("#live-labels textarea").fill("happy, sad, calm")  # two labels stay, one is new
    page.locator('#live-history polyline[data-label="calm"]').wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#live-history polyline').length === 3"
                           " && !document.querySelector('#live-history polyline[data-label=\"angry\"]')")
    starts = page.eval_on_selector_all("#live-history polyline", LINE_STARTS)
    texts = page.eval_on_selector_all("#live-history text", HISTORY_TEXTS)
    chart = page.locator("#live-history svg.live-history").bounding_box()
    heard_now = heard.input_value()
    page.context.close()
    words = [t["text"] for t in texts]
    assert "seconds ago" in words and {"-30", "0"} <= set(words), words
    ticks = [float(w[:-1]) for w in words if re.fullmatch(r"\d+%", w)]
    assert ticks and not (min(ticks) == 0 and max(ticks) == 100), f"the y range fits the values: {ticks}"
    assert starts["happy"] < starts["calm"] and starts["sad"] < starts["calm"], \
        f"the labels that stayed keep their history; the new one starts later: {starts}"
    names = {t["text"].rsplit(" ", 1)[0]: t for t in texts if re.fullmatch(r"\S+ \d+%", t["text"])}
    assert set(names) == {"happy", "sad", "calm"}, f"each line named: {words}"
    for name in names.values():
        box = name["box"]
        assert chart["x"] <= box["x"] and box["x"] + box["width"] <= min(chart["x"] + chart["width"] + 1,
                                                                          VIEWPORTS[viewport]["width"]), name
    assert min(t["size"] for t in texts) >= 11, f"readable on a {viewport}: {texts}"
    assert heard_now, "the Heard box is never blank while recording"
