"""OUT/last: the head, its config, the optimiser's state and the training progress, so a
stopped run resumes exactly. Tensors go to safetensors, the rest to JSON: no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from merclip.errors import MerClipError
from merclip.head import ModelConfig, load_weights, read_checkpoint, save_checkpoint

STATE_TENSORS = "optimizer.safetensors"
STATE_JSON = "progress.json"


def save_training_state(folder: Path, head: torch.nn.Module, config: ModelConfig, optimiser: torch.optim.Optimizer,
                        progress: dict) -> None:
    save_checkpoint(folder, head, config)
    state = optimiser.state_dict()
    tensors = {f"{index}.{name}": value.detach().cpu().contiguous()
               for index, slots in state["state"].items() for name, value in slots.items()}
    save_file(tensors, str(folder / STATE_TENSORS))
    groups = [{k: v for k, v in group.items()} for group in state["param_groups"]]
    (folder / STATE_JSON).write_text(json.dumps({"progress": progress, "param_groups": groups}, indent=2),
                                     encoding="utf-8")


def load_training_state(folder: Path, head: torch.nn.Module, optimiser: torch.optim.Optimizer) -> dict:
    """Restore head and optimiser from `folder`; returns the saved progress."""
    if not (folder / STATE_JSON).is_file():
        raise MerClipError(f"nothing to resume: {folder} has no {STATE_JSON} (train without --resume first)")
    _, weights = read_checkpoint(folder)
    load_weights(head, weights, str(folder))
    saved = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
    tensors = load_file(str(folder / STATE_TENSORS))
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        slots.setdefault(int(index), {})[name] = value
    groups = saved["param_groups"]
    if len(groups) == 1 and len(optimiser.param_groups) > 1:
        slots, groups = _regrouped(slots, head, optimiser)
    if len(groups) != len(optimiser.param_groups):
        raise MerClipError(f"{folder} was saved by a train.train whose optimiser had {len(groups)} parameter "
                           f"groups, this one has {len(optimiser.param_groups)}: it cannot go on; start a new run")
    device = next(head.parameters()).device
    optimiser.load_state_dict({"state": {i: {n: (v if n == "step" else v.to(device)) for n, v in s.items()}
                                         for i, s in slots.items()},
                               "param_groups": groups})
    return saved["progress"]


def _regrouped(slots: dict[int, dict[str, torch.Tensor]], head: torch.nn.Module, optimiser: torch.optim.Optimizer
               ) -> tuple[dict[int, dict[str, torch.Tensor]], list[dict]]:
    """A run saved before issue 33 had one group, every trainable weight in `head.parameters()` order; its
    moments move to where this optimiser's groups hold the same weights (the temperatures in their own group,
    which from then on learn at their own rate)."""
    now = [id(p) for group in optimiser.param_groups for p in group["params"]]
    before = [now.index(id(p)) for p in head.parameters() if p.requires_grad]
    return {before[i]: moments for i, moments in slots.items()}, optimiser.state_dict()["param_groups"]
