"""Start `python app.py` on a free localhost port, as a user would, and stop it afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppServer:
    """A running app; `url` is set once the page is served."""

    def __init__(self, *flags: str, timeout: float = 120, script: str = "app.py", env: dict | None = None) -> None:
        port = free_port()
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen([sys.executable, script, "--port", str(port), *flags], cwd=ROOT,
                                        stdout=self.log, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, **(env or {})})
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited early:\n{self.output()}")
            try:
                urllib.request.urlopen(self.url + "/config", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app did not serve its page within {timeout} s:\n{self.output()}")

    def upload(self, name: str, data: bytes) -> Path:
        """Upload a file as the page does; the server's path for it."""
        import httpx

        response = httpx.post(f"{self.url}/gradio_api/upload", files=[("files", (name, data, "video/mp4"))], timeout=30)
        response.raise_for_status()
        return Path(response.json()[0])

    def workspace(self) -> Path:
        """The server's private folder for uploads and results (found through an upload's path)."""
        stored = self.upload("probe.bin", b"probe")
        return next(p for p in stored.parents if p.name.startswith("merclip-app-"))

    def memory_mb(self) -> tuple[float, float]:
        """The server process's resident memory and its peak since the last `reset_peak`, in MB."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines())
        return tuple(int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))

    def reset_peak(self) -> None:
        """Start the peak (VmHWM) afresh from the current resident memory (Linux's clear_refs)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
