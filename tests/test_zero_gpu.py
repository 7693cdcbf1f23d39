"""The app as a ZeroGPU Space: the real `spaces` package in its ZeroGPU mode, on this CPU machine.

What stands in for Hugging Face's device API and for the GPU is in tests/zero_gpu_space.py;
everything else is the package's own: CUDA emulation at start-up, a forked worker per
slot, pickled arguments and results, the quota answers.
"""

import pytest
from gradio_client import Client, handle_file

from demo.service import OUTPUT_NAMES
from demo.zero_gpu import MAX_SLOT_SECONDS, slot_seconds
from merclip.forwards import ForwardCost
from merclip.sample_media import face_frames, speech_clip, write_clip
from tests.app_server import AppServer
from tests.test_app_start import wait_for_status
from tests.zero_gpu_space import FakeDeviceApi

pytestmark = pytest.mark.slow
RESULT = OUTPUT_NAMES.index("result")


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


@pytest.fixture(scope="module")
def silent_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("zero") / "silent.mp4"
    write_clip(path, face_frames(30), fps=5)
    return path


def test_models_load_at_start_up_and_the_page_says_where(space):
    server, _ = space
    status = wait_for_status(server.url, "merclip-tiny:random")
    assert "on ZeroGPU slots" in status and "Loading" not in status, status
    assert "CUDA has been initialized" not in server.output()


def test_each_click_asks_for_one_gpu_slot_sized_to_its_work(space, clip, silent_clip):
    server, api = space
    client = Client(server.url, verbose=False)
    before = len(api.slots)
    first = client.predict(handle_file(str(clip)), "happy, sad", api_name="/predict")[RESULT]
    assert first["modalities"]["used"] == ["text", "audio", "vision"]
    assert "dagger" in first["transcript"]["text"] or "free" in first["transcript"]["text"]
    assert len(first["segments"]) >= 2, "read by utterance: the sentences were encoded and scored too"
    assert len(api.slots) == before + 1, "CLIP on the crops, the words and the utterances, and the scoring: one slot"
    analysis_seconds = api.slots[-1]

    again = client.predict(first["clip_id"], "proud, bored, calm", api_name="/rescore")[RESULT]
    assert again["labels"] == ["proud", "bored", "calm"]
    assert again["transcript"] == first["transcript"], "the analysis cache lives in the main process"
    assert len(api.slots) == before + 2, "a re-score asks for one slot"
    rescore_seconds = api.slots[-1]

    whole = client.predict(handle_file(str(silent_clip)), "happy, sad", api_name="/predict")[RESULT]
    assert whole["modalities"]["used"] == ["vision"] and whole["transcript"] is None
    assert len(api.slots) == before + 3, "a clip without speech (read in windows) asks for one slot too"

    many = ", ".join(f"feeling number {i}" for i in range(64))
    client.predict(first["clip_id"], many, api_name="/rescore")
    assert len(api.slots) == before + 4
    many_labels_seconds = api.slots[-1]
    print(f"seconds asked: first analysis {analysis_seconds}, re-score {rescore_seconds}, clip without speech "
          f"{api.slots[-2]}, re-score with 64 labels {many_labels_seconds}")
    assert slot_seconds(ForwardCost()) <= rescore_seconds <= analysis_seconds <= 10, \
        "a few seconds, no more for a re-score (no crops to encode) than for a first analysis"
    assert rescore_seconds <= many_labels_seconds <= 10, "64 labels' prompts are milliseconds on a GPU too"
    assert "Traceback" not in server.output()


def test_slot_seconds_grow_with_the_work_and_stay_capped():
    base = slot_seconds(ForwardCost())
    assert slot_seconds(ForwardCost(images=32, text_rows=40, clips=9)) > base
    assert slot_seconds(ForwardCost(images=240)) > slot_seconds(ForwardCost(images=32))
    assert slot_seconds(ForwardCost(images=100_000)) == MAX_SLOT_SECONDS


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
