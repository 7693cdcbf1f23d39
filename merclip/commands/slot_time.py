"""What one ZeroGPU slot of MER-CLIP takes on this host's GPU, measured (`python -m merclip doctor`).

A slot (demo/zero_gpu.py) is a worker process that starts CUDA, receives the weights on its
GPU and runs one user action's forwards (merclip/reading/forwards.py), its result sent back on the
CPU. A fresh worker pays all of that ("cold"); a worker kept from the last slot pays only the
forwards ("warm"). Both are timed in a process of their own, started here, so that CUDA starts
inside the cold time as it does in a worker. The media's reading (decoding, faces, audio
features) is the main process's work on ZeroGPU and is left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

TIMEOUT_SECONDS = 600  # a slot is capped at seconds; this only ends a worker that hangs


@dataclass(frozen=True)
class SlotTimes:
    cold_s: float
    warm_s: float
    probs: list[float]  # the action's result, to check it against the same analysis run directly


def slot_times(clip: str, device: str, media: Path, transcript: str, labels: str) -> SlotTimes:
    """Cold and warm slot seconds for analysing `media` (its words given as `transcript`) against
    `labels` with CLIP `clip` on `device`, in a fresh process. MerClipError says why it failed."""
    from merclip.errors import MerClipError

    try:
        done = subprocess.run([sys.executable, "-m", "merclip.commands.slot_time", clip, device, str(media), transcript, labels],
                              capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise MerClipError(f"the slot's process did not finish in {TIMEOUT_SECONDS} s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise MerClipError(f"the slot's process failed: {last}")
    return SlotTimes(**json.loads(done.stdout.strip().splitlines()[-1]))


def _measure(clip: str, device: str, media: str, transcript: str, labels: str) -> SlotTimes:
    """In the fresh process: the model built on the CPU in `device`'s precision (as ZeroGPU's main
    process holds it), the media read there, then the timed slot twice."""
    import torch

    from merclip.api import load_model
    from merclip.clip.loader import default_precision
    from merclip.reading.analyzer import AnalysisOptions, Analyzer
    from merclip.reading.forwards import encode_and_score

    model = load_model(clip, device="cpu", precision=default_precision(torch.device(device)))
    model.forwards_gathered = True  # as on ZeroGPU: the reading leaves CLIP on the faces to the slot
    analyzer = Analyzer(model, whisper="none")
    options = AnalysisOptions(transcript=transcript)
    reading = analyzer.reading(media, options)

    def one_slot() -> tuple[float, list[float]]:
        started = time.perf_counter()
        model.clip.model.to(device)  # a no-op once there: the warm worker has its weights
        model.head.to(device)
        _, (prediction,) = encode_and_score(model, reading.features, reading.encoding(), None, labels, None)
        return time.perf_counter() - started, prediction.probs  # probs are Python floats: the GPU has finished

    cold, probs = one_slot()
    warm, _ = one_slot()
    return SlotTimes(round(cold, 3), round(warm, 3), probs)


if __name__ == "__main__":
    print(json.dumps(asdict(_measure(*sys.argv[1:]))))
