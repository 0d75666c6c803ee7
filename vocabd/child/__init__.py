"""How vocabd starts its own Python processes: never with the current folder on `sys.path`.

Children often run inside the workspace, whose files are user data: a `click.py` dropped there must not
be imported. `-P` keeps the current folder off `sys.path`; PYTHONSAFEPATH does the same for any Python
the child starts in turn. (Not `-I`: it would also drop PYTHONPATH, which a source checkout relies on.)
"""

from __future__ import annotations

import os
import sys


def python_command(*args: str) -> list[str]:
    return [sys.executable, "-P", *args]


def vocabd_command(*args: str) -> list[str]:
    """`python -P -m vocabd ARGS`."""
    return python_command("-m", "vocabd", *args)


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONSAFEPATH": "1", **extra}
