"""The README's screenshot script: its usage (a full run starts the app and Chromium: a minute, not for CI)."""

import subprocess
import sys

import numpy as np

from merclip.media.sample_media import write_fake_camera
from tests.test_browser import ROOT


def test_the_screenshot_script_says_what_it_writes():
    shown = subprocess.run([sys.executable, "-m", "demo.screenshots", "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "laptop.png, phone.png and live.png" in shown.stdout and "--clip" in shown.stdout


def test_the_fake_camera_file_holds_every_frame_as_chromium_reads_it(tmp_path):
    frames = [np.full((240, 320, 3), value, np.uint8) for value in (0, 128, 255)]
    data = write_fake_camera(tmp_path / "cam.y4m", frames).read_bytes()
    header, _, body = data.partition(b"\n")
    assert header == b"YUV4MPEG2 W320 H240 F30:1 Ip A1:1 C420jpeg"
    assert len(body) == 3 * (len(b"FRAME\n") + 320 * 240 * 3 // 2), "Y, then U and V at half resolution"
