"""What a stranger can reach through the public app: only assets/, their own uploads, nothing else.

Against a launched `python app.py` (tiny model) on localhost.
"""

import stat
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from demo.service import OUTPUT_NAMES
from merclip.sample_media import speech_clip
from tests.app_server import ROOT, AppServer

pytestmark = pytest.mark.slow
RESULT = OUTPUT_NAMES.index("result")


@pytest.fixture(scope="module")
def app():
    server = AppServer("--clip", "merclip-tiny:random", "--device", "cpu", "--whisper", "none")
    yield server
    server.stop()


def upload(app, name: str, data: bytes) -> Path:
    response = httpx.post(f"{app.url}/gradio_api/upload", files=[("files", (name, data, "video/mp4"))], timeout=30)
    response.raise_for_status()
    return Path(response.json()[0])


def workspace_of(path: Path) -> Path:
    return next(p for p in path.parents if p.name.startswith("merclip-app-"))


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
    stored = upload(app, "../../../../tmp/escaped.mp4", clip.read_bytes())
    workspace = workspace_of(stored)
    assert ".." not in stored.parts and stored.resolve().is_relative_to(workspace)
    assert not Path("/tmp/escaped.mp4").exists()
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700, "other users of the machine cannot read uploads"
    result = Client(app.url, verbose=False).predict({"path": str(stored), "meta": {"_type": "gradio.FileData"}},
                                                    "happy, sad", api_name="/predict")[RESULT]
    assert result["labels"] == ["happy", "sad"]


def test_a_path_outside_the_uploads_cannot_be_passed_as_the_video(app):
    client = Client(app.url, verbose=False)
    with pytest.raises(Exception) as raised:
        client.predict({"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, "happy", api_name="/predict")
    assert "root:" not in str(raised.value)


def test_the_workspace_is_removed_when_the_server_is_stopped(tmp_path):
    server = AppServer("--clip", "merclip-tiny:random", "--device", "cpu", "--whisper", "none")
    try:
        workspace = workspace_of(upload(server, "clip.mp4", speech_clip(tmp_path / "c.mp4", seconds=1).read_bytes()))
        assert workspace.is_dir()
    finally:
        server.stop()  # SIGTERM, as Spaces and service managers stop a server
    assert not workspace.exists()
