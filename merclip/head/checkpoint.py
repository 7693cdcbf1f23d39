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
import math
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from merclip.errors import MerClipError, first_line
from merclip.head.config import MAX_TEMPERATURE, ModelConfig
from merclip.head.network import MerClipHead

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HUB_PREFIX = "hf-hub:"
# The largest |weight| a checkpoint may hold: a 512-dim head with every weight at +-MAX_WEIGHT still scores below
# 1e29, far from float32's 3.4e38 (tests/test_checkpoint.py); trained heads stay within a few units.
MAX_WEIGHT = 1e4
STEP_COUNTERS = ("mean_updates",)  # counts of training steps, not weights: any finite count >= 0
TEMPERATURE_SUFFIX = "log_tau"  # read through exp(): bounded by log(MAX_TEMPERATURE), as the config's temperature
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
# The config field that sets each weight's width (the weight's name or its last parts, and the axis), in the
# order they are checked: a mismatch is reported as that field's, before any tensor is allocated.
WIDTH_FIELDS = (
    ("embed_dim", "readout.weight", 0),
    ("audio_feature_dim", "audio_adapter.0.weight", 1),
    ("vision_feature_dim", "vision_adapter.0.weight", 1),
    ("interaction_features", "interaction.weight", 0),
    ("mlp_ratio", "mlp.0.weight", 0),
)


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
    """Read a checkpoint folder (or its weights file) with clear errors for everything that can be wrong:
    the config is checked against the weights' shapes in the file's header before any tensor is read,
    so a config cannot make the loader allocate more than the weights file holds."""
    folder = checkpoint_folder(path)
    config = read_checkpoint_config(folder)
    weights_path = folder / WEIGHTS_FILE
    _check_shapes(config, _stored_shapes(weights_path), str(path))
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise _corrupt(weights_path, exc) from exc
    for name, tensor in state.items():
        _check_values(name, tensor, str(path))
    return config, state


def _stored_shapes(weights_path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape, from the safetensors header alone; only floating-point tensors are weights."""
    try:
        with safe_open(str(weights_path), framework="pt") as stored:
            slices = {name: stored.get_slice(name) for name in stored.keys()}  # noqa: SIM118 -- not a dict
            dtypes = {name: part.get_dtype() for name, part in slices.items()}
            shapes = {name: tuple(part.get_shape()) for name, part in slices.items()}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise _corrupt(weights_path, exc) from exc
    for name, dtype in dtypes.items():
        if dtype not in FLOAT_DTYPES:
            raise MerClipError(f"checkpoint weights {weights_path}: tensor {name} is {dtype}, not floating point")
    return shapes


def _check_shapes(config: ModelConfig, stored: dict[str, tuple[int, ...]], source: str) -> None:
    """The head `config` describes must have exactly the stored tensors and shapes. The head is built on
    PyTorch's meta device (shapes, no memory); a width that differs is named by the config field that sets it."""
    with torch.device("meta"):
        expected = {name: tuple(value.shape) for name, value in MerClipHead(config).state_dict().items()}
    stages = sorted({n.split(".")[2] for n in stored if n.startswith("decoder.stages.")})
    if stages != sorted(config.stage_order):
        raise MerClipError(f"checkpoint {source}: config.json's stage_order {list(config.stage_order)} does not "
                           f"match its weights (stages {stages})")
    for field, tensor, axis in WIDTH_FIELDS:
        names = sorted(n for n in {*expected, *stored} if n == tensor or n.endswith("." + tensor))
        for name in names:
            want = expected[name][axis] if name in expected else None
            have = stored[name][axis] if name in stored and len(stored[name]) > axis else None
            if want != have:
                trained = f"{name} has shape {stored[name]}" if name in stored else f"there is no {name}"
                raise MerClipError(f"checkpoint {source}: config.json's {field} ({getattr(config, field)!r}) does not "
                                   f"match its weights ({trained})")
    _check_names_and_shapes(expected, stored, source)


def _check_values(name: str, tensor: torch.Tensor, source: str) -> None:
    """Every weight finite as the head computes it (float32: 1e39 there is inf) and within MAX_WEIGHT, an
    attention temperature within MAX_TEMPERATURE: so no forward can overflow into NaN probabilities."""
    values = tensor.float()
    if not bool(torch.isfinite(values).all()):
        raise MerClipError(f"checkpoint {source}: weight {name} holds values that are not finite in float32 "
                           "(NaN, inf, or beyond +-3.4e38)")
    low, high = (0.0, math.inf) if name in STEP_COUNTERS else (-MAX_WEIGHT, MAX_WEIGHT)
    if name.endswith(TEMPERATURE_SUFFIX):
        high = math.log(MAX_TEMPERATURE)
    if values.numel() and not (low <= float(values.min()) and float(values.max()) <= high):
        raise MerClipError(f"checkpoint {source}: weight {name} holds values outside [{low:g}, {high:g}] "
                           f"(from {float(values.min()):g} to {float(values.max()):g})")


def _corrupt(weights_path: Path, exc: Exception) -> MerClipError:
    return MerClipError(f"checkpoint weights {weights_path} are corrupt or not safetensors: {first_line(exc)}")


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

    from merclip.host.hub import offline_if_hub_unreachable

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
    from huggingface_hub.errors import (HFValidationError, LocalEntryNotFoundError, RemoteEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

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
    _check_names_and_shapes({k: tuple(v.shape) for k, v in head.state_dict().items()},
                            {k: tuple(v.shape) for k, v in state.items()}, source)
    head.load_state_dict(state)


def _check_names_and_shapes(expected: dict[str, tuple[int, ...]], stored: dict[str, tuple[int, ...]],
                            source: str) -> None:
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    wrong = [k for k in expected if k in stored and stored[k] != expected[k]]
    details = []
    if missing:
        details.append(f"missing {missing[0]}")
    if extra:
        details.append(f"unexpected {extra[0]}")
    if wrong:
        details.append(f"{wrong[0]} has shape {stored[wrong[0]]}, expected {expected[wrong[0]]}")
    if details:
        raise MerClipError(f"checkpoint {source} does not match its architecture: {'; '.join(details)}")
