"""Which share of a long list of files this process takes: `--shard i/n`, or torchrun's ranks.

A SLURM array or `torchrun` across nodes starts n processes; each takes the items whose
names hash to its index (`in_shard`), so together they cover every item exactly once. The hash
is of the name alone (SHA-256: the same in every process and on every machine, unlike `hash()`), so an
item added or removed between two shards' runs moves no other item to another shard.
"""

from __future__ import annotations

import hashlib
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


def in_shard(name: str, index: int, count: int) -> bool:
    """Whether the item of this stable `name` (a path relative to the input folder) is shard `index`'s."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count == index
