"""One holder per workspace: an flock on `daemon.lock`, which also records who holds it.

The holder is the daemon, or a foreground run (`vocabd run --foreground`, `vocabd demo`) driving the chain
in a terminal; either way nobody else drives the chain meanwhile, and `vocabd status` can say who does.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from vocabd.chain.record import current
from vocabd.clock import now_iso
from vocabd.errors import VocabdError
from vocabd.inbox.drops import Outcome, inbox_entries
from vocabd.inbox.ingest import ingest_inbox, print_outcomes
from vocabd.workspace import DAEMON_LOCK, Workspace



DAEMON = "daemon"
FOREGROUND = "foreground run"


class DaemonRunning(VocabdError):
    def __init__(self, ws: Workspace, holder: dict[str, Any]):
        who = f"(pid {holder.get('pid', '?')}, started {holder.get('started', '?')} on {holder.get('host', '?')})"
        if holder.get("role", DAEMON) == DAEMON:
            message = f"vocabd is already running for {ws.root} {who}; stop it with `vocabd stop`"
        else:
            message = (f"a foreground run {who} holds {ws.root}; let it finish or stop it with Ctrl-C in its "
                       "terminal")
        super().__init__(message)
        self.holder = holder


def lock_path(ws: Workspace) -> Path:
    return ws.root / DAEMON_LOCK


class DaemonLock:
    """Held for the daemon's lifetime; the kernel drops it when the process dies, even by kill -9."""

    def __init__(self, ws: Workspace, role: str = DAEMON):
        self.ws, self.role = ws, role
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(lock_path(self.ws), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DaemonRunning(self.ws, _read(lock_path(self.ws))) from None
        info = {"pid": os.getpid(), "role": self.role, "started": now_iso(), "started_epoch": time.time(),
                "host": socket.gethostname(), "python": sys.executable}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DaemonLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(ws: Workspace) -> dict[str, Any] | None:
    """Who holds `ws` (pid, role, started, host), or None when nobody does."""
    path = lock_path(ws)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read(path) or {"pid": None}  # locked but not yet written: starting up
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


# the inbox while someone holds the workspace -------------------------------------------------------

def inbox_owner(ws: Workspace) -> str | None:
    """Who takes in the inbox right now, when it is not this command: the daemon, or a running chain stage."""
    daemon = holder(ws)
    if daemon is not None:
        return f"the {daemon.get('role', 'daemon')} (pid {daemon.get('pid')})"
    chain = current(ws)
    if chain is not None and chain.state == "running":
        return f"chain {chain.name} (running {chain.phase}/{chain.stage})"
    return None


def take_in_inbox_first(ws: Workspace, console: Console | None = None) -> list[Outcome]:
    """Before a verb reads the workspace's material: ingest what waits, unless the inbox has an owner."""
    console = console or Console(stderr=True)
    waiting = inbox_entries(ws)
    if not waiting:
        return []
    owner = inbox_owner(ws)
    if owner is not None:
        console.print(f"[yellow]{len(waiting)} file(s) wait in {ws.inbox}; {owner} takes them in "
                      "(or now: `vocabd ingest`)", highlight=False, soft_wrap=True)
        return []
    outcomes = ingest_inbox(ws)
    print_outcomes(console, outcomes)
    return outcomes
