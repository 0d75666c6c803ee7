"""A child that outlives the call that starts it (the trainer), in a session of its own."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from vocabd.child import child_env


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
