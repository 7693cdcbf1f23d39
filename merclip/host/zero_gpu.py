"""Whether this process runs on a Hugging Face ZeroGPU Space.

There the main process never holds a GPU: only the workers of `spaces.GPU` functions do,
and CUDA must not be touched before `spaces` is imported. The mode is read from the
environment variable the `spaces` package reads, the way it reads it, without importing
`spaces`: in that mode the import patches torch and fails once CUDA was touched, which a
mere check must never cause.
"""

from __future__ import annotations

import importlib.util
import os

ZERO_GPU_VARIABLE = "SPACES_ZERO_GPU"  # set by Hugging Face on a ZeroGPU Space (spaces/config.py)


def zero_gpu_mode() -> bool:
    """True where `spaces` is installed and its ZeroGPU mode is on."""
    if importlib.util.find_spec("spaces") is None:
        return False
    return os.environ.get(ZERO_GPU_VARIABLE, "").lower() in ("1", "t", "true")
