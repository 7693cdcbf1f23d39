"""Checkpoints: a folder with `model.safetensors` (trainable weights) and `config.json`.

Safetensors cannot run code when loaded, so checkpoints from strangers are safe to
open; the JSON config holds everything needed to rebuild the model around them.
CLIP itself is not saved: it is frozen and named by the config's CLIP spec.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from merclip.config import ModelConfig
from merclip.errors import MerClipError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def save_checkpoint(directory: str | Path, head: torch.nn.Module, config: ModelConfig) -> Path:
    """Write weights and config; the weights are written to a temporary name first so a
    crash never leaves a half-written checkpoint under the real name."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in head.state_dict().items()}
    partial = folder / (WEIGHTS_FILE + ".partial")
    save_file(state, str(partial), metadata={"format": "merclip"})
    partial.replace(folder / WEIGHTS_FILE)
    (folder / CONFIG_FILE).write_text(config.to_json(), encoding="utf-8")
    return folder


def read_checkpoint(path: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read a checkpoint folder (or its weights file) with clear errors for everything that can be wrong."""
    config = read_checkpoint_config(path)
    weights_path = _folder(path) / WEIGHTS_FILE
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise MerClipError(f"checkpoint weights {weights_path} are corrupt or not safetensors: {exc}") from exc
    return config, state


def read_checkpoint_config(path: str | Path) -> ModelConfig:
    """The config of a complete checkpoint, without reading its weights (e.g. to know its CLIP)."""
    folder = _folder(path)
    if not folder.is_dir():
        raise MerClipError(f"checkpoint not found: {path} (expected a folder with {WEIGHTS_FILE} and {CONFIG_FILE})")
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for required in (config_path, weights_path):
        if not required.is_file():
            raise MerClipError(f"checkpoint {folder} has no {required.name}")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MerClipError(f"checkpoint config {config_path} is not valid JSON: {exc}") from exc
    return ModelConfig.from_dict(data, source=str(config_path))


def _folder(path: str | Path) -> Path:
    folder = Path(path)
    return folder.parent if folder.is_file() and folder.name.endswith(".safetensors") else folder


def load_weights(head: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load weights strictly: a missing, extra or mis-shaped tensor means another architecture."""
    expected = head.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    details = []
    if missing:
        details.append(f"missing {missing[0]}")
    if extra:
        details.append(f"unexpected {extra[0]}")
    if wrong:
        name = wrong[0]
        details.append(f"{name} has shape {tuple(state[name].shape)}, expected {tuple(expected[name].shape)}")
    if details:
        raise MerClipError(f"checkpoint {source} does not match its architecture: {'; '.join(details)}")
    head.load_state_dict(state)
