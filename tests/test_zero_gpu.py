"""The app as a ZeroGPU Space: the real `spaces` package in its ZeroGPU mode, on this CPU machine.

What stands in for Hugging Face's device API and for the GPU is in tests/zero_gpu_space.py;
everything else is the package's own: CUDA emulation at start-up, a forked worker per
slot, pickled arguments and results, the quota answers.
"""

import pytest
from gradio_client import Client, handle_file

from demo.service import OUTPUT_NAMES
from demo.zero_gpu import MAX_SLOT_SECONDS
from merclip.sample_media import speech_clip
from tests.app_server import AppServer
from tests.test_app_start import wait_for_status
from tests.zero_gpu_space import FakeDeviceApi

pytestmark = pytest.mark.slow
RESULT = OUTPUT_NAMES.index("result")
ZERO_GPU_SCALE = 1.5  # what ZeroGPU multiplies a request by on its default size


@pytest.fixture(scope="module")
def space():
    api = FakeDeviceApi()
    server = AppServer("--clip", "merclip-tiny:random", script="tests/zero_gpu_space.py",
                       env={"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": api.url})
    yield server, api
    server.stop()
    api.stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return speech_clip(tmp_path_factory.mktemp("zero") / "clip.mp4", seconds=4)


def test_models_load_at_start_up_and_the_page_says_where(space):
    server, _ = space
    status = wait_for_status(server.url, "merclip-tiny:random")
    assert "on ZeroGPU slots" in status and "Loading" not in status, status
    assert "CUDA has been initialized" not in server.output()


def test_predict_and_rescore_run_their_forwards_in_gpu_slots(space, clip):
    server, api = space
    client = Client(server.url, verbose=False)
    before = len(api.slots)
    first = client.predict(handle_file(str(clip)), "happy, sad", api_name="/predict")[RESULT]
    assert first["modalities"]["used"] == ["text", "audio", "vision"]
    assert "dagger" in first["transcript"]["text"] or "free" in first["transcript"]["text"]
    analysis_slots = api.slots[before:]
    assert len(analysis_slots) == 4, "CLIP on the crops, on the transcript, on the utterances' sentences, " \
        "and the scoring of the clip and its utterances in one batch (every utterance here has two frames)"
    assert all(0 < s <= MAX_SLOT_SECONDS * ZERO_GPU_SCALE for s in analysis_slots), analysis_slots

    again = client.predict(first["clip_id"], "proud, bored, calm", api_name="/rescore")[RESULT]
    assert again["labels"] == ["proud", "bored", "calm"]
    assert again["transcript"] == first["transcript"], "the analysis cache lives in the main process"
    assert len(api.slots) == before + len(analysis_slots) + 1, "a re-score asks for one slot, for the scoring only"
    assert "Traceback" not in server.output()


def test_exhausted_quota_is_a_message_and_the_space_keeps_serving(space, clip):
    server, api = space
    client = Client(server.url, verbose=False)
    api.quota_left = False
    try:
        with pytest.raises(Exception, match="GPU limit"):
            client.predict(handle_file(str(clip)), "happy, sad", api_name="/predict")
    finally:
        api.quota_left = True
    assert client.predict(handle_file(str(clip)), "calm", api_name="/predict")[RESULT]["labels"] == ["calm"]
