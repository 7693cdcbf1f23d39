"""What a stranger can reach through the public app: only assets/, their own uploads, nothing else.

Against a launched `python app.py` (tiny model) on localhost.
"""

import stat
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from demo.clip_tab import OUTPUT_NAMES
from merclip.media.sample_media import speech_clip
from tests.app_server import ROOT, AppServer

pytestmark = pytest.mark.slow
RESULT = OUTPUT_NAMES.index("result")


@pytest.fixture(scope="module")
def app():
    server = AppServer("--clip", "merclip-tiny:random", "--device", "cpu", "--whisper", "none")
    yield server
    server.stop()


@pytest.mark.parametrize("target", ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "README.md"),
                                    str(ROOT / "assets" / ".." / "app.py"), "../../../../etc/hostname"])
def test_files_outside_assets_are_not_served(app, target):
    response = httpx.get(f"{app.url}/gradio_api/file={target}", timeout=10)
    assert response.status_code in (403, 404), (target, response.status_code)
    assert "root:" not in response.text


def test_assets_are_served(app):
    response = httpx.get(f"{app.url}/gradio_api/file={ROOT / 'assets' / 'examples' / 'great_news.mp4'}", timeout=10)
    assert response.status_code == 200 and response.content[4:8] == b"ftyp"


def test_an_upload_named_with_dot_dots_lands_in_the_private_workspace_and_is_analysed(app, tmp_path):
    clip = speech_clip(tmp_path / "clip.mp4", seconds=2)
    stored = app.upload("../../../../tmp/escaped.mp4", clip.read_bytes())
    workspace = app.workspace()
    assert ".." not in stored.parts and stored.resolve().is_relative_to(workspace)
    assert not Path("/tmp/escaped.mp4").exists()
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700, "other users of the machine cannot read uploads"
    result = Client(app.url, verbose=False).predict({"path": str(stored), "meta": {"_type": "gradio.FileData"}},
                                                    "happy, sad", api_name="/predict")[RESULT]
    assert result["labels"] == ["happy", "sad"]


@pytest.mark.parametrize("server_file", ["/etc/passwd", "skimage-photo"])
def test_a_server_path_sent_as_the_video_is_refused(app, server_file):
    """A raw API call naming a file on the server (gradio_client would upload its own copy instead):
    a server photo must not come back as face crops, nor a text file as an error quoting it."""
    if server_file == "skimage-photo":
        import skimage

        server_file = str(Path(skimage.__file__).parent / "data" / "astronaut.png")
        assert Path(server_file).is_file()
    video = {"path": server_file, "meta": {"_type": "gradio.FileData"}}
    api = f"{app.url}/gradio_api"
    inputs = [video, "happy", "", "", "", 8, True, "", "merclip-tiny:random", "none", None]  # the page's 11 inputs
    event = httpx.post(f"{api}/call/predict", json={"data": inputs}, timeout=30).json()["event_id"]
    answer = httpx.get(f"{api}/call/predict/{event}", timeout=60).text
    assert "event: error" in answer and "event: complete" not in answer, answer
    assert "root:" not in answer and "happy" not in answer
    assert "not uploaded by a user" in app.output()


def test_the_workspace_is_removed_when_the_server_is_stopped():
    server = AppServer("--clip", "merclip-tiny:random", "--device", "cpu", "--whisper", "none")
    try:
        workspace = server.workspace()
        assert workspace.is_dir()
    finally:
        server.stop()  # SIGTERM, as Spaces and service managers stop a server
    assert not workspace.exists()
