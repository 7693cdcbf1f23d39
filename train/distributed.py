"""One process or many: the same training code under `python` and under `torchrun`.

torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; then a process group starts (nccl on
GPUs, gloo on CPU) and the head is wrapped in DistributedDataParallel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from merclip.clip import resolve_device


@dataclass
class Distributed:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device: str = "auto") -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", 1))
        if world == 1:
            return cls(0, 1, resolve_device(device))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        chosen = resolve_device(device)
        if chosen.type == "cuda":
            chosen = torch.device("cuda", local_rank)
            torch.cuda.set_device(chosen)
        torch_dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        return cls(torch_dist.get_rank(), torch_dist.get_world_size(), chosen)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # A batch may lack a modality entirely (e.g. no clip with speech): its stage gets no gradient.
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)

    def barrier(self) -> None:
        if self.world > 1:
            torch_dist.barrier()

    def stop(self) -> None:
        if self.world > 1 and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
