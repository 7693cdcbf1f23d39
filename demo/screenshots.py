"""The README's screenshots, regenerated: `python -m demo.screenshots [--clip SPEC] [--out FOLDER]`.

Starts `python app.py` on a free local port and drives it with headless Chromium (Playwright): the
first screen at a laptop's size (1400 x 900) and at a phone's (390 x 844), and the Live tab after
20 s of recording with a fake camera showing a real face and a fake microphone speaking a real
sentence (the media come from `merclip.media.sample_media`). Offline, CLIP has random weights
(`ViT-B-32:random`, the default here): the pictures show the page, not real predictions.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIEWPORTS = {"laptop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
RESULT_TIMEOUT_MS = 300_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="ViT-B-32:random", help="CLIP SPEC the app runs with")
    parser.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots",
                        help="folder for laptop.png, phone.png and live.png")
    parser.add_argument("--live-seconds", type=float, default=20.0, help="recording time before live.png is taken")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"),
                        help="the Chromium executable (Playwright's own download needs the internet)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.chromium:
        sys.exit("no Chromium found: install it (apt-get install chromium) or pass --chromium PATH")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="merclip-screens-") as folder:
        devices = fake_devices(Path(folder))
        server, url = start_app(args.clip)
        try:
            take(url, args.chromium, devices, args.out, args.live_seconds)
        finally:
            server.terminate()
            server.wait(timeout=30)
    for name in ("laptop", "phone", "live"):
        path = args.out / f"{name}.png"
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB")


def fake_devices(folder: Path) -> list[str]:
    """Chromium's flags for a camera showing the astronaut's face and a microphone saying a sentence."""
    import numpy as np

    from merclip.media import SAMPLE_RATE, face_frames, recordings, write_fake_camera, write_fake_microphone

    camera = write_fake_camera(folder / "cam.y4m", face_frames(60, size=320))
    speech = recordings(("heath_ledger.mp3",))[0]
    microphone = write_fake_microphone(folder / "voice.wav", np.concatenate([speech, np.zeros(SAMPLE_RATE, np.float32)]))
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}", f"--use-file-for-fake-audio-capture={microphone}"]


def start_app(clip: str, timeout: float = 180) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free local port, once it serves its page."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--clip", clip, "--device", "cpu"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(url + "/config", timeout=2)
            return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit(f"the app did not start within {timeout:.0f} s")


def take(url: str, chromium: str, devices: list[str], out: Path, live_seconds: float) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS + devices)
        for name, viewport in VIEWPORTS.items():
            page = browser.new_page(viewport=viewport)
            open_first_screen(page, url)
            save(page, out / f"{name}.png")
            page.close()
        page = browser.new_context(viewport=VIEWPORTS["laptop"], permissions=["camera", "microphone"]).new_page()
        open_first_screen(page, url)
        page.get_by_role("tab", name="Live webcam").click()
        camera = page.locator("#live-camera")
        camera.get_by_text("Click to Access Webcam").click()
        camera.get_by_label("capture photo").click()  # Record: the camera, and the microphone with it
        page.locator("#live-bars svg .mark-rect path").first.wait_for(timeout=RESULT_TIMEOUT_MS)
        page.wait_for_timeout(live_seconds * 1000)
        save(page, out / "live.png", page.locator("#live-tab"))  # the whole tab: camera, bars, history, words
        browser.close()


def open_first_screen(page, url: str) -> None:
    """The page as a visitor first sees it: the example's result arrived, nothing scrolled."""
    page.goto(url)
    page.locator("#heading").get_by_text("Example:").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.locator("#bars img").wait_for(timeout=RESULT_TIMEOUT_MS)
    page.wait_for_timeout(1000)


def save(page, path: Path, part=None) -> None:
    """The viewport (or the `part` locator's element) as a PNG of at most 256 colours (a README
    picture in ~100 KB, not ~500)."""
    from PIL import Image

    (part or page).screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


if __name__ == "__main__":
    main()
