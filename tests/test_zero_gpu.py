"""The app as a ZeroGPU Space: the real `spaces` package in its ZeroGPU mode, on this CPU machine.

What stands in for Hugging Face's device API and for the GPU is in tests/zero_gpu_space.py;
everything else is the package's own: CUDA emulation at start-up, a forked worker per
slot, pickled arguments and results, the quota answers.
"""

import base64
import json
import threading

import pytest
from gradio_client import Client, handle_file

from demo.clip_tab import OUTPUT_NAMES, PAGE_OUTPUT_NAMES
from demo.zero_gpu import MAX_SLOT_SECONDS, slot_seconds
from merclip.api import ForwardCost
from merclip.media.sample_media import face_frames, speech_clip, write_clip
from tests.app_server import AppServer
from tests.page_events import page_event, uploaded
from tests.test_app_start import wait_for_status
from tests.zero_gpu_space import FakeDeviceApi

pytestmark = pytest.mark.slow
RESULT = OUTPUT_NAMES.index("result")
OPENED = ("video", "preset", "labels", *OUTPUT_NAMES, "stale", "colours")  # what a new page is given
# the token a Space's page sends with each request (a JWT; `spaces` reads its middle part only)
VISITOR_TOKEN = "header." + base64.urlsafe_b64encode(json.dumps({}).encode()).decode().rstrip("=") + ".signature"


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


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut):
    path = tmp_path_factory.mktemp("zero") / "face.png"
    astronaut.save(path)
    return path


def test_a_new_page_opens_with_the_example_analysed_without_asking_for_a_gpu_slot(space):
    server, api = space
    wait_for_status(server.url, "on ZeroGPU slots")
    before = len(api.slots)
    opened = dict(zip(OPENED, page_event(server.url, None, "then", {}, api_name="on_load").outputs))
    assert "Example:" in opened["heading"] and opened["result"]["labels"], opened["heading"]
    assert len(api.slots) == before, "the example was analysed at start-up, on the CPU"


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
    base = slot_seconds(ForwardCost())
    assert base <= rescore_seconds <= analysis_seconds <= base + 2, \
        "the worker's start and a few seconds, no more for a re-score (no crops to encode) than for a first analysis"
    assert rescore_seconds <= many_labels_seconds <= base + 2, "64 labels' prompts are milliseconds on a GPU too"
    assert "Traceback" not in server.output()


def test_slot_seconds_grow_with_the_work_and_stay_capped():
    base = slot_seconds(ForwardCost())
    assert base >= 10, "a fresh worker's start fits (10 s: the guess until a GPU measurement)"
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


@pytest.mark.parametrize("refusal, said", [
    ("quota", ["ZeroGPU quota exceeded", "Try again in 1:00:00", "sign in to Hugging Face"]),
    ("no GPU", ["No GPU was available", "try again in a minute"]),
    ("slot ran out", ["slot ran out", "try again"]),
])
def test_a_refused_or_ended_gpu_slot_is_said_on_the_page_with_what_to_do(space, photo, refusal, said):
    server, api = space
    attribute, refused = {"quota": ("quota_left", False), "no GPU": ("gpu_free", False),
                          "slot ran out": ("slots_run_out", True)}[refusal]
    setattr(api, attribute, refused)
    try:
        answer = page_event(server.url, "analyse", "click", {"other-media": uploaded(server.url, photo),
                                                              "labels": "happy, sad"},
                            headers={"x-ip-token": VISITOR_TOKEN})
        if refusal == "slot ran out":
            with pytest.raises(Exception, match="slot ran out"):
                Client(server.url, verbose=False).predict(handle_file(str(photo)), "happy, sad", api_name="/predict")
    finally:
        setattr(api, attribute, not refused)
    note = dict(zip(PAGE_OUTPUT_NAMES, answer.outputs))["media_note"]
    assert all(part in note for part in said) and "internal error" not in note, note
    assert Client(server.url, verbose=False).predict(handle_file(str(photo)), "calm", api_name="/predict")[RESULT][
        "labels"] == ["calm"], "the next request is served"


def test_a_visitor_waiting_for_a_gpu_holds_up_no_other_kind_of_work_and_one_queued_is_told_its_place(
        space, clip, photo):
    server, api = space
    gpu_free = threading.Event()
    api.held.clear()
    api.hold_next = gpu_free
    waiting = Client(server.url, verbose=False).submit(handle_file(str(clip)), "happy, sad", api_name="/predict")
    queued = {}
    try:
        assert api.held.wait(60), "the API's analysis waits for a GPU"
        queued_call = threading.Thread(target=lambda: queued.update(answer=page_event(
            server.url, None, "click", {"video": uploaded(server.url, clip), "labels": "calm"}, api_name="predict")))
        queued_call.start()
        page = page_event(server.url, "analyse", "click", {"other-media": uploaded(server.url, photo),
                                                            "labels": "proud, bored"})
        assert dict(zip(PAGE_OUTPUT_NAMES, page.outputs))["result"]["labels"] == ["proud", "bored"]
        assert not waiting.done(), "the page's analysis went ahead of the API's, which still waits for its GPU"
    finally:
        gpu_free.set()
    assert waiting.result()[RESULT]["labels"] == ["happy", "sad"]
    queued_call.join(120)
    assert 1 in queued["answer"].places, "the API call queued behind the waiting one was told its place"
    assert queued["answer"].outputs[RESULT]["labels"] == ["calm"]
