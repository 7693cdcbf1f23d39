"""`python app.py` serves its page at once and says what it runs: missing weights, random weights."""

import time

import pytest
from gradio_client import Client

from tests.app_server import AppServer


@pytest.fixture
def launch():
    servers = []

    def start(*flags: str) -> AppServer:
        servers.append(AppServer(*flags))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def wait_for_status(url: str, fragment: str, timeout: float = 60) -> str:
    """The model status the page shows, once it contains `fragment` (models load in the background)."""
    client = Client(url, verbose=False)
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = client.predict(api_name="/status_markdown")
        if fragment in status:
            return status
        time.sleep(0.5)
    pytest.fail(f"the page never said {fragment!r}; last status: {status}")


@pytest.mark.slow
def test_page_explains_missing_weights(launch):
    status = wait_for_status(launch().url, "No model loaded")
    assert "'ViT-B-32:openai'" in status and "offline" in status
    assert "--clip ViT-B-32:random" in status and "ViT-B-32:/path/to/" in status


@pytest.mark.slow
def test_random_weights_run_is_labelled(launch):
    status = wait_for_status(launch("--clip", "merclip-tiny:random").url, "meaningless")
    assert "Plumbing run" in status
