"""Which share of a long list of files this process takes: `--shard i/n`, or torchrun's ranks.

A SLURM array or `torchrun` across nodes starts n processes; each takes items i, i+n, ...
of the same sorted list, so together they cover every item exactly once.
"""

from __future__ import annotations

import os

from merclip.errors import MerClipError


def shard_of(text: str | None) -> tuple[int, int]:
    """(index, count) from `i/n`, or from RANK/WORLD_SIZE (torchrun) when not given."""
    if text is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise MerClipError(f"--shard '{text}': expected i/n, e.g. 0/4") from None
    if not 0 <= index < count:
        raise MerClipError(f"--shard '{text}': i must be in 0..n-1")
    return index, count
