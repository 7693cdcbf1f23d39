"""`python app.py` starts even without CLIP weights and says what it tried and how to fix it."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def launch():
    processes = []

    def start(*flags: str) -> str:
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port), *flags], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"app exited early:\n{process.stdout.read()}")
            try:
                urllib.request.urlopen(url + "/config", timeout=2)
                return url
            except OSError:
                time.sleep(0.5)
        pytest.fail("app did not serve its page within 90 s")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def _page_texts(url: str) -> str:
    config = json.load(urllib.request.urlopen(url + "/config", timeout=10))
    return "\n".join(str(c.get("props", {}).get("value", "")) for c in config["components"])


@pytest.mark.slow
def test_page_explains_missing_weights(launch):
    text = _page_texts(launch())
    assert "No model loaded" in text
    assert "'ViT-B-32:openai'" in text and "offline" in text
    assert "--clip ViT-B-32:random" in text and "ViT-B-32:/path/to/" in text


@pytest.mark.slow
def test_random_weights_run_is_labelled_and_scores_an_image(launch, tmp_path, astronaut):
    from gradio_client import Client, handle_file

    url = launch("--clip", "merclip-tiny:random")
    assert "meaningless" in _page_texts(url)
    astronaut.save(tmp_path / "face.png")
    result = Client(url, verbose=False).predict(
        handle_file(str(tmp_path / "face.png")), "happy, sad, calm", api_name="/predict_image"
    )
    assert {c["label"] for c in result["confidences"]} == {"happy", "sad", "calm"}
    assert abs(sum(c["confidence"] for c in result["confidences"]) - 1) < 1e-4
