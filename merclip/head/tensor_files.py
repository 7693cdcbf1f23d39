"""Tensors plus JSON metadata in one safetensors file, written atomically.

Used for cached analyses and for extracted training features: safetensors cannot run
code when read, and a file is either complete under its name or not there at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def write_tensor_file(path: Path, tensors: dict[str, torch.Tensor], meta: dict, key: str) -> None:
    """Write to a unique temporary name beside `path`, then rename: readers never see half a file."""
    handle, partial = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    os.close(handle)
    try:
        save_file(tensors, partial, metadata={key: json.dumps(meta)})
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def read_tensor_file(path: Path, key: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Every tensor and the JSON metadata stored under `key`."""
    with safe_open(str(path), framework="pt") as stored:
        tensors = {name: stored.get_tensor(name) for name in stored.keys()}  # noqa: SIM118 -- not a dict
        return tensors, json.loads(stored.metadata()[key])
