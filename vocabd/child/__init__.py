"""How vocabd starts its own Python processes: never with the current folder on `sys.path`.

Children often run inside the workspace, whose files are user data: a `click.py` dropped there must not
be imported. `-P` keeps the current folder off `sys.path`; PYTHONSAFEPATH does the same for any Python
the child starts in turn. (Not `-I`: it would also drop PYTHONPATH, which a source checkout relies on.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path


def python_command(*args: str) -> list[str]:
    return [sys.executable, "-P", *args]


def vocabd_command(*args: str) -> list[str]:
    """`python -P -m vocabd ARGS`."""
    return python_command("-m", "vocabd", *args)


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONSAFEPATH": "1", **extra}


def spawn_detached(command: list[str], log: Path, cwd: Path | None = None, **env: str) -> subprocess.Popen:
    """Start `command` in a session of its own (a terminal's Ctrl-C or the daemon's stop does not reach it),
    its output appended to `log`; returns at once. The child is reaped when it ends, so a long-lived parent
    keeps no zombie."""
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                start_new_session=True, close_fds=True, env=child_env(**env))
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc
