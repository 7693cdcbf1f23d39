"""Hugging Face ZeroGPU: the GPU only for model forwards, in short slots asked for per call.

On a ZeroGPU Space the main process never holds a GPU. Models are placed on "cuda" at
start-up, in the main thread (the `spaces` package records them there; it must be imported
before anything touches CUDA, which is why app.py imports this module first). Each call of a
function wrapped with `spaces.GPU` runs in a worker process that holds a GPU for the
duration it asked for and sends its result back pickled.

So only the model forwards go there (CLIP on the crops, on the transcript, and the labels'
scoring); decoding, face detection, audio features and Whisper run in the main process,
and the analysis cache stays there too, where re-scoring finds it. Everywhere else (no
`spaces` package, or not on ZeroGPU) nothing here changes anything.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

try:
    import spaces
    from spaces.config import Config as _SpacesConfig
except ImportError:  # not on a Space: nothing to do
    spaces = None
    _SpacesConfig = None

import torch  # noqa: E402 -- after spaces, which must see CUDA untouched

from merclip.api import MerClip  # noqa: E402
from merclip.prepared import PreparedClips  # noqa: E402

# Seconds asked per slot: a worker's first call also moves the weights to its GPU. ZeroGPU
# scales the request by 1.5 on its default size and refuses one larger than the visitor's
# quota left, so small requests keep anonymous visitors analysing.
SLOT_SECONDS = 10
SLOT_SECONDS_PER_IMAGE = 0.25
MAX_SLOT_SECONDS = 30

_MODELS: list[MerClip] = []  # filled before the worker is forked, which inherits them


def active() -> bool:
    """True on a ZeroGPU Space (the `spaces` package in its ZeroGPU mode)."""
    return _SpacesConfig is not None and _SpacesConfig.zero_gpu


def _forward(model_index: int, method: str, *args: Any) -> Any:
    """In the GPU worker: one forward of the model, its result moved to the CPU for pickling."""
    return _on_cpu(getattr(_MODELS[model_index], method)(*args))


def _slot_seconds(model_index: int, method: str, *args: Any) -> float:
    images = len(args[0]) if method == "encode_images" else 0
    return min(MAX_SLOT_SECONDS, SLOT_SECONDS + SLOT_SECONDS_PER_IMAGE * images)


_on_gpu = spaces.GPU(duration=_slot_seconds)(_forward) if active() else _forward


class ZeroGpuModel:
    """A MerClip whose forwards run in ZeroGPU slots; everything else is the model's own."""

    def __init__(self, model: MerClip) -> None:
        self._model = model
        self._index = len(_MODELS)
        _MODELS.append(model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def encode_images(self, images: Sequence) -> torch.Tensor:
        return _on_gpu(self._index, "encode_images", list(images))

    def encode_transcript(self, text: str | Sequence[str]):
        return _on_gpu(self._index, "encode_transcript", text)

    def encode_sentences(self, words: Sequence[str], groups: Sequence[Sequence[int]]) -> torch.Tensor:
        return _on_gpu(self._index, "encode_sentences", list(words), [list(g) for g in groups])

    def predict(self, features, labels, templates: Mapping | None = None):
        return _on_gpu(self._index, "predict", features, labels, templates)

    def prepare(self, clips: Sequence) -> PreparedClips:
        """Checked and batched here, on the CPU: the stages' keys and values need the GPU, so each
        slot that scores them computes them again (a slot's results cannot stay on its GPU)."""
        return self._model.prepare(clips, project=False)

    def predict_many(self, clips: Sequence | PreparedClips, labels, templates: Mapping | None = None):
        clips = clips if isinstance(clips, PreparedClips) else list(clips)
        return _on_gpu(self._index, "predict_many", clips, labels, templates)


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
