"""Hugging Face ZeroGPU: the GPU only for model forwards, in short slots asked for per call.

On a ZeroGPU Space the main process never holds a GPU. Models are placed on "cuda" at
start-up, in the main thread (the `spaces` package records them there; it must be imported
before anything touches CUDA, which is why app.py imports this module first). Each call of a
function wrapped with `spaces.GPU` runs in a worker process that holds a GPU for the
duration it asked for and sends its result back pickled.

So only the model forwards go there, all of one click in one slot (merclip/reading/forwards.py: CLIP
on the crops, the transcript and the utterances, then the labels' scoring); decoding, face
detection, audio features and Whisper run in the main process before it, and the analysis
cache stays there too, where re-scoring finds it. Everywhere else (no
`spaces` package, or not on ZeroGPU) nothing here changes anything.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

try:
    import spaces
except ImportError:  # not on a Space: nothing to do
    spaces = None

import gradio as gr  # noqa: E402
import torch  # noqa: E402 -- after spaces, which must see CUDA untouched

from merclip.api import ForwardCost, MerClip  # noqa: E402
from merclip.head import PreparedClips  # noqa: E402
from merclip.host import zero_gpu_mode  # noqa: E402

# Seconds asked per slot, from what the slot's forwards weigh (merclip/reading/forwards.py: one slot per
# click). The base covers a worker's start and the weights' move to its GPU; the rest is generous
# for the forwards (milliseconds each on a GPU) and for their CPU side in the worker (CLIP's
# preprocessing of each crop). ZeroGPU scales a request by 1.5 on its default size and refuses
# one larger than the visitor's quota left; only the time a slot really takes is charged. A slot
# that runs out ends its worker, and the visitor is told so (`ZeroGpuModel.run`).
SLOT_BASE_SECONDS = 10.0  # guess pending a GPU measurement by `python -m merclip doctor` (a fresh worker's start)
SECONDS_PER_IMAGE = 0.03
SECONDS_PER_TEXT_ROW = 0.002
SECONDS_PER_CLIP = 0.005
MAX_SLOT_SECONDS = 30

# What `spaces` raises (as gr.Error, spaces/zero/client.py and wrappers.py): the title of a refusal
# for quota, the start of its messages when no GPU was free, and the message of a worker that
# ended without a result (ZeroGPU ends a worker whose slot ran out)
QUOTA_EXCEEDED = "ZeroGPU quota exceeded"
NO_GPU = "No GPU was available"
WORKER_ENDED = "GPU task aborted"
QUOTA_HELP = ("ZeroGPU lends each visitor a few minutes of GPU time a day, more when signed in: "
              "[sign in to Hugging Face](https://huggingface.co/login) (or [subscribe to PRO]"
              "(https://huggingface.co/subscribe/pro)) for more, or come back once your time is refilled.")
NO_GPU_HELP = "Every GPU that serves this Space was busy: try again in a minute."

_MODELS: list[MerClip] = []  # filled before the worker is forked, which inherits them


def active() -> bool:
    """True on a ZeroGPU Space (the `spaces` package in its ZeroGPU mode)."""
    return zero_gpu_mode()


def slot_seconds(cost: ForwardCost) -> int:
    """Whole seconds to ask for a slot whose forwards weigh `cost` (at most MAX_SLOT_SECONDS)."""
    seconds = (SLOT_BASE_SECONDS + SECONDS_PER_IMAGE * cost.images + SECONDS_PER_TEXT_ROW * cost.text_rows
               + SECONDS_PER_CLIP * cost.clips)
    return min(MAX_SLOT_SECONDS, math.ceil(seconds))


def next_step(error: gr.Error) -> str:
    """What a visitor can do about a ZeroGPU refusal, in Markdown ("" for other errors): `spaces`
    tells only API callers how to get more GPU time."""
    message = str(error.message)
    if message.startswith(NO_GPU):
        return NO_GPU_HELP
    return QUOTA_HELP if getattr(error, "title", "") == QUOTA_EXCEEDED else ""


def _forward(model_index: int, cost: ForwardCost, forwards: Callable, *args: Any) -> Any:
    """In the GPU worker: one user action's forwards, the result moved to the CPU for pickling."""
    return _on_cpu(forwards(_MODELS[model_index], *args))


def _duration(model_index: int, cost: ForwardCost, forwards: Callable, *args: Any) -> int:
    return slot_seconds(cost)


_on_gpu = spaces.GPU(duration=_duration)(_forward) if active() else _forward


class ZeroGpuModel:
    """A MerClip whose forwards run in ZeroGPU slots, one per user action; everything else is the model's own."""

    def __init__(self, model: MerClip) -> None:
        self._model = model
        self._index = len(_MODELS)
        _MODELS.append(model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    forwards_gathered = True  # each call is a slot: an analysis leaves CLIP on the faces to its one call

    def run(self, forwards: Callable, *args: Any, cost: ForwardCost) -> Any:
        """`forwards(model, *args)` in one GPU slot sized by `cost`; a worker that ended without a
        result is said as such (ZeroGPU's own word for it is "GPU task aborted")."""
        try:
            return _on_gpu(self._index, cost, forwards, *args)
        except gr.Error as error:
            if str(error.message) != WORKER_ENDED:
                raise
            raise gr.Error(f"the GPU slot ran out: its worker stopped before finishing, most likely at the end of the "
                           f"{slot_seconds(cost)} s "
                           "this Space asked for (ZeroGPU ends a worker when its time is up); try again, the server "
                           "keeps running", title="ZeroGPU slot ran out", print_exception=False) from None

    def prepare(self, clips: Sequence) -> PreparedClips:
        """Checked and batched here, on the CPU: the stages' keys and values need the GPU, so each
        slot that scores them computes them again (a slot's results cannot stay on its GPU)."""
        return self._model.prepare(clips, project=False)


def _on_cpu(value: Any) -> Any:
    """Tensors anywhere in a result (lists, dicts, dataclasses) moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        moved = copy.copy(value)
        for field in dataclasses.fields(value):
            setattr(moved, field.name, _on_cpu(getattr(value, field.name)))
        return moved
    return value
