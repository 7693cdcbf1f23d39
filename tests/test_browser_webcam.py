"""A visitor records with the webcam and microphone in a real browser, then analyses the recording.

Chromium stands in for the devices: its fake camera plays a y4m file made here from a real
face photograph, its fake microphone loops a WAV of a real spoken sentence. The clicks are
the visitor's: switch the video input to the camera, allow it, record, stop, Analyse.
"""

import numpy as np
import pytest

from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.sample_media import SPEECH_TEXT, face_frames, recordings
from merclip.media.sample_media import write_fake_camera as write_y4m
from merclip.media.sample_media import write_fake_microphone as write_wav
from tests.app_server import AppServer
from tests.test_browser import CHROMIUM_ARGS, chromium, first_screen, load  # noqa: F401 -- the fixture

pytestmark = pytest.mark.slow
SENTENCE = "heath_ledger.mp3"  # "If you're good at something, never do it for free."
RECORD_SECONDS = 6


def test_visitor_records_with_the_webcam_and_gets_all_three_modalities(chromium, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    write_y4m(tmp_path / "cam.y4m", face_frames(60, size=320))
    speech = recordings((SENTENCE,))[0]
    write_wav(tmp_path / "voice.wav", np.concatenate([speech, np.zeros(SAMPLE_RATE // 2, np.float32)]))
    devices = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
               f"--use-file-for-fake-video-capture={tmp_path / 'cam.y4m'}",
               f"--use-file-for-fake-audio-capture={tmp_path / 'voice.wav'}"]
    server = AppServer("--clip", "merclip-tiny:random", "--device", "cpu")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS + devices)
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=["camera", "microphone"])
            page = context.new_page()
            load(page, server.url)
            first_screen(page)
            page.get_by_label("Capture from camera").click()
            page.get_by_text("Click to Access Webcam").click()
            record = page.get_by_label("start recording")
            record.click()
            page.wait_for_timeout(RECORD_SECONDS * 1000)
            record.click()  # the same button, now reading "Stop"
            page.locator("#video video").wait_for(timeout=30_000)
            page.locator("#analyse").click()
            page.locator("#crops img").nth(7).wait_for(timeout=240_000)  # the gallery fills in one image at a time
            summary = page.locator("#summary").inner_text()
            transcript = page.locator("#transcript").inner_text().lower()
            crops = page.locator("#crops img").count()
            errors = page.locator(".toast-body.error").count()
            browser.close()
    finally:
        server.stop()
    assert "Modalities used: text, audio, vision" in summary, summary
    spoken = {w.strip(",.'").lower() for w in SPEECH_TEXT[SENTENCE].split()}
    heard = set(transcript.replace(",", " ").replace(".", " ").split())
    assert len(spoken & {"good", "something", "never", "free"} & heard) >= 2, transcript
    assert crops == 8 and errors == 0
