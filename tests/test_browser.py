"""A real browser (headless Chromium via Playwright) uses the page end to end, as a visitor would."""

import os
import shutil
from pathlib import Path

import pytest

from tests.app_server import AppServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "assets" / "examples" / "great_news.mp4"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
FIGURES = ["#bars img", "#stage-1 img", "#stage-2 img", "#timeline img", "#crops img"]  # stage 3: audio, untrained


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Chromium: install it with `apt-get install -y --no-install-recommends chromium` "
                    "(Playwright's own browser download needs the internet)")
    return path


RESULT_TIMEOUT_MS = 180_000


def load(page, url: str) -> None:
    """Open the page and wait until it is drawn. (Not "networkidle": the page keeps a heartbeat
    connection open so the server knows when a visitor leaves, and the network is never idle.)"""
    page.goto(url)
    page.locator("#analyse").wait_for(timeout=60_000)


def first_screen(page) -> None:
    """Wait for the example's finished analysis that a new page opens with (a visitor sees it
    before acting; what they do before it arrives can be replaced by it)."""
    page.locator("#heading").get_by_text("Example: Great news!").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator("#bars img").wait_for(timeout=RESULT_TIMEOUT_MS)


def test_visitor_uploads_a_clip_and_sees_every_figure(chromium, tmp_path):
    from playwright.sync_api import sync_playwright

    server = AppServer("--clip", os.environ.get("MERCLIP_BROWSER_CLIP", "ViT-B-32:random"), "--device", "cpu")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            load(page, server.url)
            first_screen(page)
            page.locator("#video").get_by_label("Clear").click()  # the example's clip makes room for the visitor's
            page.locator("#video input[type=file]").set_input_files(str(EXAMPLE))
            page.locator("#video video").wait_for(timeout=30_000)
            page.locator("#analyse").click()
            for selector in FIGURES:
                page.locator(selector).first.wait_for(timeout=240_000)
            page.locator("#crops img").nth(7).wait_for(timeout=30_000)
            assert page.locator("#crops img").count() == 8
            assert "Voice stage" in page.locator("#untrained").inner_text() and not page.locator("#stage-3 img").count()
            transcript = page.locator("#transcript").inner_text()
            assert "news" in transcript and "happy" in transcript
            assert "meaningless" in page.locator("#warnings").inner_text()
            assert page.locator(".toast-body.error").count() == 0, "no error toast"
            shot = Path(os.environ.get("MERCLIP_SCREENSHOT", tmp_path / "app.png"))
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
            browser.close()
    finally:
        server.stop()
