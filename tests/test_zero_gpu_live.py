"""The Live tab on a ZeroGPU Space whose start-up weights were packed to disk, as `spaces` does at launch.

The real `pack` runs (tests/zero_gpu_space.py with ZERO_GPU_SPACE_OFFLOAD=disk): afterwards the
main process no longer holds the weights of the models placed on "cuda", so the live frames and
the microphone must be served by what that process really has, without a GPU slot. The live
events are private to the page (not in the client API): they are driven here through Gradio's
queue protocol, as the page's webcam and microphone streams drive them.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
import wave

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from demo.clip_tab import OUTPUT_NAMES
from merclip.media.acoustic_features import SAMPLE_RATE
from merclip.media.sample_media import face_frames, recordings, speech_clip
from tests.app_server import AppServer
from tests.test_app_start import wait_for_status
from tests.zero_gpu_space import OFFLOAD, FakeDeviceApi

pytestmark = pytest.mark.slow
LABELS = "happy, sad"


@pytest.fixture(scope="module")
def space():
    api = FakeDeviceApi()
    server = AppServer("--clip", "merclip-tiny:random", script="tests/zero_gpu_space.py",
                       env={"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": api.url, OFFLOAD: "disk"})
    yield server, api
    server.stop()
    api.stop()


def stream(url: str, elem_id: str, chunks: list[list], session: str, pace: float = 0.0) -> list[list]:
    """Each chunk's inputs sent to the stream event of the component `elem_id`, as one stream, one every
    `pace` seconds at most (a microphone's chunks come at the pace of speech); each chunk's outputs."""
    config = httpx.get(f"{url}/config").json()
    source = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id)
    event_fn = next(d["id"] for d in config["dependencies"] if [source, "stream"] in d["targets"])

    def body(data: list) -> dict:
        return {"data": data, "fn_index": event_fn, "session_hash": session, "event_data": None, "trigger_id": source}

    event = httpx.post(f"{url}/gradio_api/queue/join", json=body(chunks[0])).json()["event_id"]
    outputs, rest = [], list(chunks[1:])
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=120) as sse:
        for line in sse.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_streaming":
                outputs.append(message["output"]["data"])
                if rest:
                    time.sleep(pace)
                    httpx.post(f"{url}/gradio_api/stream/{event}", json=body(rest.pop(0)))
                else:
                    httpx.post(f"{url}/gradio_api/stream/{event}/close")
            elif message.get("msg") == "process_completed":
                assert message.get("success", True), message
                return outputs
    pytest.fail(f"the {elem_id} stream ended without completing")


def camera_frame(frame: np.ndarray) -> dict:
    """A webcam frame as the page streams it: a data URL."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return {"url": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
            "meta": {"_type": "gradio.FileData"}}


def microphone_chunk(url: str, samples: np.ndarray) -> dict:
    """A microphone chunk as the page streams it: an uploaded WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    files = [("files", ("chunk.wav", buffer.getvalue(), "audio/wav"))]
    path = httpx.post(f"{url}/gradio_api/upload", files=files, timeout=30).json()[0]
    return {"path": path, "orig_name": "chunk.wav", "meta": {"_type": "gradio.FileData"}}


def test_live_frames_and_words_are_served_on_the_cpu_after_the_start_up_weights_left_for_disk(space, tmp_path):
    server, api = space
    wait_for_status(server.url, "on ZeroGPU slots")
    session = uuid.uuid4().hex[:10]
    frames = stream(server.url, "live-camera", [[camera_frame(f), LABELS, None] for f in face_frames(3, size=256)],
                    session)  # None: the visitor's colours, a state the server keeps
    status = frames[-1][2]
    assert "3 frames scored" in status and "face found" in status and "scored on the CPU" in status, status
    speech = recordings(("cate_blanch.mp3",))[0][: SAMPLE_RATE * 5]  # "I sleep with a dagger. If you so much as move ..."
    half_second = SAMPLE_RATE // 2
    sound = np.concatenate([speech, np.zeros(SAMPLE_RATE * 8, np.float32)])  # the sentence, then a pause to end it
    chunks = [[microphone_chunk(server.url, sound[i:i + half_second])] for i in range(0, len(sound), half_second)]
    # words are heard at the pause, off the stream: they come with a later chunk, as from a microphone left on
    heard = " ".join(out[0] for out in stream(server.url, "live-microphone", chunks, session, pace=0.5)
                     if isinstance(out[0], str))
    assert "dagger" in heard.lower() or "sleep" in heard.lower(), heard
    assert api.slots == [], "the live tab asks for no GPU slot"

    clip = speech_clip(tmp_path / "clip.mp4", seconds=4)
    result = Client(server.url, verbose=False).predict(handle_file(str(clip)), LABELS, api_name="/predict")
    probs = result[OUTPUT_NAMES.index("result")]["probs"]
    assert None not in probs and max(probs) - min(probs) > 0.01, f"the slot read the weights back from disk: {probs}"
    assert "Traceback" not in server.output()
