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


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["missing file", "wrong architecture"])
def test_a_clip_that_cannot_load_is_explained_and_other_models_still_work(launch, tmp_path, weights):
    from gradio_client import handle_file
    from safetensors.torch import save_file

    from demo.clip_tab import OUTPUT_NAMES
    from merclip.clip.loader import load_clip
    from merclip.media.sample_media import speech_clip

    path = tmp_path / "weights.safetensors"
    if weights == "wrong architecture":  # tiny weights offered as RN50
        tiny = load_clip("merclip-tiny:random", device="cpu")
        save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, str(path))
    server = launch("--clip", f"RN50:{path}", "--device", "cpu", "--whisper", "none", "--max-mb", "1")
    expected = "not found" if weights == "missing file" else "could not be loaded as RN50"
    assert expected in wait_for_status(server.url, "No model loaded")
    clip = speech_clip(tmp_path / "clip.mp4", seconds=2)
    client = Client(server.url, verbose=False)
    with pytest.raises(Exception, match=expected):
        client.predict(handle_file(str(clip)), "happy, sad", api_name="/predict")
    result = client.predict(handle_file(str(clip)), "happy, sad", clip="merclip-tiny:random", api_name="/predict")
    assert result[OUTPUT_NAMES.index("result")]["labels"] == ["happy", "sad"]
    big = tmp_path / "big.mp4"
    big.write_bytes(clip.read_bytes() + b"\0" * 2 * 2**20)
    with pytest.raises(Exception, match="(?i)too large|exceeds|maximum"):
        client.predict(handle_file(str(big)), "happy", clip="merclip-tiny:random", api_name="/predict")
    assert "Traceback" not in server.output(), "failures visitors cause are messages, not logged crashes"
