"""Checkpoints: a folder with `model.safetensors` (trainable weights) and `config.json`.

Safetensors cannot run code when loaded, so checkpoints from strangers are safe to
open; the JSON config holds everything needed to rebuild the model around them.
CLIP itself is not saved: it is frozen and named by the config's CLIP spec.

`hf-hub:ORG/NAME[@REVISION]` names a Hugging Face Hub repository holding those two
files: only they are fetched (into the usual Hugging Face cache, reused after), never a
pickle; offline, or with the hub unreachable, the cache alone answers.
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
HUB_PREFIX = "hf-hub:"


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
    folder = checkpoint_folder(path)
    config = read_checkpoint_config(folder)
    weights_path = folder / WEIGHTS_FILE
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise MerClipError(f"checkpoint weights {weights_path} are corrupt or not safetensors: {exc}") from exc
    return config, state


def read_checkpoint_config(path: str | Path) -> ModelConfig:
    """The config of a complete checkpoint, without reading its weights (e.g. to know its CLIP)."""
    folder = checkpoint_folder(path)
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


def checkpoint_folder(path: str | Path) -> Path:
    """The local folder of a checkpoint: the folder itself, its weights file's folder, or the
    cached snapshot of an `hf-hub:` repository (downloaded first when online and not cached)."""
    if str(path).startswith(HUB_PREFIX):
        return _hub_snapshot(str(path)[len(HUB_PREFIX):])
    folder = Path(path)
    return folder.parent if folder.is_file() and folder.name.endswith(".safetensors") else folder


def _hub_snapshot(name: str) -> Path:
    from huggingface_hub import hf_hub_download

    from merclip.hub import offline_if_hub_unreachable

    repo, _, revision = name.partition("@")
    with offline_if_hub_unreachable():
        try:
            config = Path(hf_hub_download(repo, CONFIG_FILE, revision=revision or None))
            # the snapshot's commit pins the weights to the revision the config came from
            hf_hub_download(repo, WEIGHTS_FILE, revision=config.parent.name)
        except (OSError, ValueError) as exc:  # huggingface_hub's errors derive from these
            raise MerClipError(f"checkpoint {HUB_PREFIX}{name}: {_hub_problem(exc)}") from exc
    return config.parent


def _hub_problem(exc: Exception) -> str:
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, LocalEntryNotFoundError):
        return ("not in the local Hugging Face cache, and the hub is offline (HF_HUB_OFFLINE) or unreachable: "
                "run once online, or give a local folder")
    if isinstance(exc, HFValidationError):
        return "not a repository name (expected hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION)"
    if isinstance(exc, RevisionNotFoundError):
        return "the repository has no such revision"
    if isinstance(exc, RemoteEntryNotFoundError):
        return f"the repository has no {WEIGHTS_FILE} + {CONFIG_FILE} (only safetensors checkpoints are loaded)"
    if isinstance(exc, RepositoryNotFoundError):
        return "no such repository on the hub (or it is private or gated: log in with `hf auth login`)"
    return f"download failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


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
