"""Reaching the Hugging Face hub: fail in milliseconds when it is unreachable.

Without this, open_clip and faster-whisper retry for about a minute before giving
up on a machine without internet; with it, only the local cache is used and the
caller can say exactly what is missing.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from urllib.parse import urlparse

_HUB_PROBE_TIMEOUT_S = 3.0


@contextlib.contextmanager
def offline_if_hub_unreachable() -> Iterator[Callable[[], bool]]:
    """Use only the local cache when the hub cannot be reached, so a load fails in
    milliseconds instead of retrying for about a minute. Yields a check: are we offline?"""
    import huggingface_hub.constants as hub_constants

    saved = hub_constants.HF_HUB_OFFLINE
    if not saved and not hub_reachable(hub_constants.ENDPOINT):
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield lambda: bool(hub_constants.HF_HUB_OFFLINE)
    finally:
        hub_constants.HF_HUB_OFFLINE = saved


def hub_reachable(endpoint: str) -> bool:
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # a proxy decides; let huggingface_hub's own timeouts apply
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=_HUB_PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True
