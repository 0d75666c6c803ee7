"""Files shipped inside the package, read through importlib.resources so that a wheel install has them too.

- `demo/`: the demo workspace's jargon list and texts (`vocabd demo`, vocabd/demo.py);
- `agent/`: the login-agent templates, a launchd plist and a systemd user unit (vocabd/daemon/service.py).
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from vocabd.errors import VocabdError


def resource(*parts: str) -> Traversable:
    """The packaged file `vocabd/resources/<parts>`; a missing one means a broken install."""
    node = files(__name__)
    for part in parts:
        node = node / part
    if not node.is_file():
        raise VocabdError(f"packaged file vocabd/resources/{'/'.join(parts)} is missing: reinstall vocabd")
    return node


def resource_text(*parts: str) -> str:
    return resource(*parts).read_text(encoding="utf-8")
