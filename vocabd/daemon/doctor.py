"""`vocabd doctor [--repair]`: find the workspace's broken state files and recover from them.

What it checks: `queue.db` (SQLite's own quick check), the chain record `data/chain.json` and the inbox
ledger `data/inbox_state.json` (torn, or not of their shape). `--repair` (with no daemon or foreground
run holding the workspace) sets each broken file aside as `NAME.corrupt-<UTC time>` (nothing is deleted)
and rebuilds the queue from the chain record: the stage it names is queued again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vocabd.errors import VocabdError
from vocabd.chain import record as state
from vocabd.workspace import Workspace

QUEUE_FIX = ("stop the daemon (`vocabd stop`), then run `vocabd doctor --repair`: it sets queue.db aside and "
             "rebuilds the queue from data/chain.json")


@dataclass
class Finding:
    path: Path
    problem: str | None  # None: fine

    def line(self) -> str:
        return f"{self.path.name:<17} {'ok' if self.problem is None else self.problem}"


def queue_problem(ws: Workspace) -> str | None:
    """Why queue.db cannot be used (a torn or garbage file), or None when it is sound or absent."""
    if not ws.queue_db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{ws.queue_db}?mode=ro", uri=True, timeout=5)
        try:
            rows = [r[0] for r in conn.execute("pragma quick_check").fetchall()]
            conn.execute("select count(*) from task").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return str(e)
    return None if rows == ["ok"] else "; ".join(rows[:3])


def queue_message(ws: Workspace, problem: str) -> str:
    return f"{ws.queue_db} is corrupt ({problem}): {QUEUE_FIX}"


def _chain_problem(ws: Workspace) -> str | None:
    try:
        state.read_record(ws)
    except state.StateCorrupt as e:
        return str(e)
    return None


def _ledger_problem(ws: Workspace) -> str | None:
    from vocabd.inbox.ledger import read_state

    try:
        read_state(ws)
    except VocabdError as e:
        return str(e)
    return None


def check(ws: Workspace) -> list[Finding]:
    from vocabd.inbox.ledger import state_path

    return [Finding(ws.queue_db, queue_problem(ws)), Finding(state.chain_path(ws), _chain_problem(ws)),
            Finding(state_path(ws), _ledger_problem(ws))]


def startup_problems(ws: Workspace) -> list[str]:
    """What keeps a daemon from starting, each a line saying what to do."""
    problem = queue_problem(ws)
    found = [queue_message(ws, problem)] if problem else []
    return found + [p for p in (_chain_problem(ws), _ledger_problem(ws)) if p]


def set_aside(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    path.rename(aside)
    for suffix in ("-wal", "-shm", "-journal"):  # SQLite's side files belong to the broken database
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(aside.with_name(aside.name + suffix))
    return aside


def repair(ws: Workspace) -> list[str]:
    """Set broken state files aside and rebuild the queue from the chain record; one line per action."""
    from vocabd.chain.lock import holder
    from vocabd.chain.queue import ChainQueue
    from vocabd.timing import Timing

    if (who := holder(ws)) is not None:
        raise VocabdError(f"the {who.get('role', 'daemon')} (pid {who.get('pid')}) holds {ws.root}: stop it first "
                          "(`vocabd stop`), then run `vocabd doctor --repair`")
    lines = []
    for finding in check(ws)[1:]:
        if finding.problem is not None:
            aside = set_aside(finding.path)
            lines.append(f"{finding.path.name}: set aside as {aside.name}" + _after_aside(finding.path.name))
    if queue_problem(ws) is not None:
        aside = set_aside(ws.queue_db)
        queue = ChainQueue(ws, Timing.from_env().retry_delay)
        chain = state.current(ws)
        if queue.recover() and chain is not None:
            lines.append(f"queue.db: set aside as {aside.name}; rebuilt with {chain.name} {chain.phase}/{chain.stage} "
                         "queued again (from data/chain.json)")
        else:
            lines.append(f"queue.db: set aside as {aside.name}; rebuilt empty (the chain record has no stage to run)")
        queue.huey.storage.close()
    return lines or ["nothing to repair"]


def _after_aside(name: str) -> str:
    if name == state.CHAIN_FILE:
        return "; the next drop into inbox/ (or `vocabd run`) starts a new chain (runs/ keeps every run)"
    return ("; a fresh ledger starts (files in inbox/done/ stay; a file dropped again is no longer recognised "
            "as a duplicate)")
