"""`data/daemon_state.json`: the queue's own record of the chain, so no stage is ever lost.

Huey removes a task from SQLite when a worker takes it, so a daemon killed mid-stage would forget it.
Before each stage is enqueued the journal names it (with a fresh token); a restarted daemon re-enqueues
the journal's stage when the queue no longer holds it, and a task whose token is not the journal's
(superseded or enqueued twice) does nothing. The journal also remembers the material counter each
chain started from, which decides when new inbox material calls for retraining.
"""

from __future__ import annotations

import fcntl
import json
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from vocabd.daemon.ledger import now_iso
from vocabd.files import write_json
from vocabd.workspace import Workspace

JOURNAL_FILE = "daemon_state.json"
LOCK_FILE = ".daemon_state.lock"
LIVE = ("queued", "running", "interrupted")  # the chain still has this stage to run
MAX_FAILURES = 20

_thread_lock = threading.Lock()


@contextmanager
def _lock(ws: Workspace) -> Iterator[None]:
    """Threads of the daemon and other processes (`vocabd run` queues a chain) change the journal in turn."""
    ws.data.mkdir(parents=True, exist_ok=True)
    with _thread_lock, open(ws.data / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def journal_path(ws: Workspace) -> Path:
    return ws.data / JOURNAL_FILE


def read_journal(ws: Workspace) -> dict[str, Any]:
    try:
        return json.loads(journal_path(ws).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}  # only a hand edit can tear it (writes are atomic); start afresh rather than refuse


def _write(ws: Workspace, journal: dict[str, Any]) -> None:
    write_json(journal_path(ws), journal)


def cursor(ws: Workspace) -> dict[str, Any] | None:
    return read_journal(ws).get("cursor")


def is_live(ws: Workspace) -> bool:
    current = cursor(ws)
    return current is not None and current.get("state") in LIVE


def chain_started(ws: Workspace, name: str, material_seq: int) -> None:
    with _lock(ws):
        journal = read_journal(ws)
        journal["chain"] = {"name": name, "started": now_iso(), "started_epoch": time.time(),
                            "material_seq": material_seq}
        _write(ws, journal)


def last_chain(ws: Workspace) -> dict[str, Any] | None:
    return read_journal(ws).get("chain")


def set_queued(ws: Workspace, name: str, phase: str, stage: str, attempt: int, delay: float,
               after: str | None = None, repeat: int = 0) -> str | None:
    """Name the next stage; returns the token its task must carry. With `after`, only if the cursor still
    carries that token (a stage that finished after shutdown gave up on it must not move the chain)."""
    token = uuid.uuid4().hex
    with _lock(ws):
        journal = read_journal(ws)
        if after is not None and (journal.get("cursor") or {}).get("token") != after:
            return None
        journal["cursor"] = {"name": name, "phase": phase, "stage": stage, "attempt": attempt, "token": token,
                             "state": "queued", "enqueued": now_iso(), "eta_epoch": time.time() + delay,
                             "repeat": repeat}
        _write(ws, journal)
    return token


def update(ws: Workspace, token: str, new_token: bool = False, **changes: Any) -> dict[str, Any] | None:
    """Change the cursor if it still carries `token` and return it; None when the task was superseded.
    `new_token` retires the token, so the task holding it can no longer move the chain."""
    with _lock(ws):
        journal = read_journal(ws)
        current = journal.get("cursor")
        if current is None or current.get("token") != token:
            return None
        current.update(changes)
        if new_token:
            current["token"] = uuid.uuid4().hex
        if changes.get("state") == "failed":
            failures = journal.setdefault("failures", [])
            failures.append({k: current.get(k) for k in ("name", "phase", "stage", "attempt", "error")}
                            | {"when": now_iso()})
            del failures[:-MAX_FAILURES]
        _write(ws, journal)
        return dict(current)


def failures(ws: Workspace) -> list[dict[str, Any]]:
    return read_journal(ws).get("failures", [])
