"""`python app.py` as on a ZeroGPU Space, on a machine without a GPU.

The real `spaces` package runs in its ZeroGPU mode: it records the models put on "cuda" at
start-up, forks a worker per GPU slot, pickles each call's arguments and result, and asks
a device API for every slot. Two parts need hardware or Hugging Face's servers, and only
they are stood in for:
- the device API (schedule a slot, allow, release, and the quota answers): `FakeDeviceApi`,
  a loopback HTTP server speaking the same protocol;
- the GPU itself: the worker's `init` (CUDA start) and `move` (weights to the GPU) put the
  weights back on the CPU instead, and start-up `pack` (offloading them to disk for that
  move) keeps them in memory.

Run as a script, it is the app with those stand-ins: `python tests/zero_gpu_space.py [app flags]`.
With ZERO_GPU_SPACE_OFFLOAD=disk the real start-up `pack` runs instead, so the main process's
memory is as on a Space (see `stand_in_for_the_gpu_after_a_real_pack`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FakeDeviceApi:
    """The ZeroGPU device API on loopback. Its answers as on a Space: `quota_left` False refuses every
    slot for quota (to be tried again in an hour); `gpu_free` False answers that no GPU is available;
    `slots_run_out` True ends each slot's worker as ZeroGPU ends one whose time is up (a kill of its
    process; here a fresh worker's, as soon as it reports in: the slot is not offered as idle, so
    `spaces` starts a fresh one); `hold_next` (an event) keeps the next slot
    waiting for a GPU until it is set (and `held` is set once that slot waits)."""

    def __init__(self) -> None:
        self.quota_left = True
        self.gpu_free = True
        self.slots_run_out = False
        self.hold_next: threading.Event | None = None
        self.held = threading.Event()
        self.slots: list[int] = []  # seconds asked, per scheduled slot
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                path, _, query = self.path.partition("?")
                params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
                if path == "/schedule":
                    if not api.quota_left:
                        return self._json(429, {"left": 0, "wait": "PT1H"})
                    if not api.gpu_free:
                        return self._json(503, {})
                    hold, api.hold_next = api.hold_next, None
                    if hold is not None:
                        api.held.set()
                        hold.wait(timeout=50)  # within the 60 s `spaces` waits for an answer
                    api.slots.append(int(params.get("durationSeconds", 0)))
                    return self._json(200, {"idle": not api.slots_run_out, "nvidiaIndex": 0, "nvidiaUUID": "fake-gpu",
                                            "allowToken": f"token-{len(api.slots)}"})
                if path == "/allow" and api.slots_run_out:
                    os.kill(int(params["pid"]), signal.SIGKILL)
                self._json(200, {})  # /startup-report, /allow, /release

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def stand_in_for_the_gpu() -> None:
    """The worker's GPU steps, done on the CPU (see the module docstring)."""
    import torch
    from spaces.zero import torch as zero_torch
    from spaces.zero.torch import patching

    def weights_back_on_the_cpu(callback=None) -> None:
        for fake, original in patching.cuda_aliases.items():
            if original is not None:
                fake.data = torch.Tensor(original)

    zero_torch.pack = lambda: 0
    zero_torch.init = lambda nvidia_uuid: None
    zero_torch.move = weights_back_on_the_cpu


OFFLOAD = "ZERO_GPU_SPACE_OFFLOAD"


def stand_in_for_the_gpu_after_a_real_pack() -> None:
    """Only the worker's `init` and `move` stood in; start-up `pack` is the real one. As on a Space, it
    writes the weights put on "cuda" to disk (a private folder here) and frees them in the main
    process; `move` reads them back from that file onto the CPU, as the real one reads them onto
    the GPU (same layout: `spaces.zero.torch.packing`)."""
    import torch
    from spaces.config import Config
    from spaces.zero import torch as zero_torch
    from spaces.zero.torch import patching

    Config.zerogpu_offload_dir = tempfile.mkdtemp(prefix="zerogpu-offload-")
    atexit.register(shutil.rmtree, Config.zerogpu_offload_dir, ignore_errors=True)

    def weights_back_from_disk(callback=None) -> None:
        for pack in patching.tensor_packs:
            stored = torch.from_file(pack.path(), size=os.path.getsize(pack.path()), dtype=torch.uint8)
            offset = 0
            for meta, size, aligned_size in [*(t for batch in pack.batches for t in batch), *pack.big_tensors]:
                weights = stored[offset:offset + size].view(meta.dtype).as_strided(meta.shape, meta.stride())
                for fake in pack.fakes[meta]:
                    fake.data = weights
                offset += aligned_size

    zero_torch.init = lambda nvidia_uuid: None
    zero_torch.move = weights_back_from_disk


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    import spaces  # noqa: F401 -- before anything touches CUDA, as on a Space

    if os.environ.get(OFFLOAD) == "disk":
        stand_in_for_the_gpu_after_a_real_pack()
    else:
        stand_in_for_the_gpu()
    import app

    app.main(sys.argv[1:])
