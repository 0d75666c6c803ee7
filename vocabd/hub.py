"""Is the Hugging Face Hub there? Asked quickly, before huggingface_hub spends ~25 s retrying a dead network."""

from __future__ import annotations

import os


def hub_offline() -> bool:
    """The user said so (HF_HUB_OFFLINE)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 3.0) -> bool:
    """A TCP connect to the hub's host succeeds within `timeout` seconds."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False
