"""Persisted chain state (`data/chain.json`) and the active adapter (`data/active.json`).

The chain file always names the stage to run next (or the one running), so a daemon that was
killed mid-chain re-enqueues exactly that stage on restart. Torch-free.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vocabd.files import write_json
from vocabd.workspace import Workspace

CHAIN_FILE = "chain.json"
ACTIVE_FILE = "active.json"
LIVE_STATES = ("queued", "running", "retrying")  # a chain in one of these still has work to do

_lock = threading.Lock()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def chain_path(ws: Workspace) -> Path:
    return ws.data / CHAIN_FILE


def active_path(ws: Workspace) -> Path:
    return ws.data / ACTIVE_FILE


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        # A torn file cannot happen with write_json; a hand-edited one is treated as absent.
        return None


def read_chain(ws: Workspace) -> dict[str, Any] | None:
    return read_json(chain_path(ws))


def update_chain(ws: Workspace, name: str, **changes: Any) -> dict[str, Any] | None:
    """Apply `changes` to the chain file if it still belongs to chain `name`; returns the new state."""
    with _lock:
        chain = read_chain(ws)
        if chain is None or chain.get("name") != name:
            return None
        chain.update(changes, updated=now_iso())
        write_json(chain_path(ws), chain)
        return chain


def record_timing(ws: Workspace, name: str, phase: str, stage: str, start: float, end: float) -> None:
    """Per-stage wall time; a stage that runs several times (poll) spans first start to last end."""
    with _lock:
        chain = read_chain(ws)
        if chain is None or chain.get("name") != name:
            return
        timings = chain.setdefault("timings", {}).setdefault(phase, {})
        entry = timings.get(stage) or {"start": start, "runs": 0}
        entry.update(end=end, wall_s=round(end - entry["start"], 2), runs=entry["runs"] + 1)
        timings[stage] = entry
        chain["updated"] = now_iso()
        write_json(chain_path(ws), chain)


def new_chain(ws: Workspace, name: str, material: dict[str, Any]) -> dict[str, Any]:
    chain = {
        "name": name, "phase": "mini", "stage": "synthesize", "state": "queued",
        "started": now_iso(), "started_epoch": time.time(), "updated": now_iso(),
        "material": material, "timings": {}, "attempts": {},
    }
    with _lock:
        write_json(chain_path(ws), chain)
    return chain


def read_active(ws: Workspace) -> dict[str, Any] | None:
    return read_json(active_path(ws))


def write_active(ws: Workspace, active: dict[str, Any]) -> None:
    write_json(active_path(ws), active)
