"""Has the workspace material no training chain has started from yet? (retraining on new drops and at login)

A chain counts whether the daemon started it (the journal keeps the inbox ledger's material counter
at its start) or `vocabd run --foreground` did (the pipeline's chain state keeps its start time).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from vocabd.daemon import journal, ledger
from vocabd.daemon.inbox import JARGON_FILE, VOICE_REF
from vocabd.workspace import MY_VOICE_EVAL, MY_VOICE_TRAIN, Workspace


def material_files(ws: Workspace) -> list[Path]:
    """The user's material in data/ (what the inbox writes, or what a user placed there by hand)."""
    names = [JARGON_FILE, VOICE_REF, f"{MY_VOICE_TRAIN}.jsonl", f"{MY_VOICE_EVAL}.jsonl"]
    return [ws.data / n for n in names if (ws.data / n).exists()]


def _epoch(iso: Any) -> float:
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return 0.0


def trained_through(ws: Workspace, pipeline: ModuleType | None) -> tuple[int, float] | None:
    """(material counter, start time) of the latest chain, or None when no chain ever started."""
    last = journal.last_chain(ws)
    seq, started = (last["material_seq"], last["started_epoch"]) if last else (0, 0.0)
    outside = _epoch((pipeline.chain_state(ws) or {}).get("started")) if pipeline else 0.0
    if outside > started + 1.0:  # a chain the daemon did not start (`vocabd run --foreground`)
        items = ledger.read_state(ws)["items"]
        seq = max((i["seq"] for i in items if i.get("ingested_epoch", _epoch(i["ingested"])) <= outside), default=0)
        started = outside
    if last is None and started == 0.0:
        return None
    return seq, started


def untrained_items(ws: Workspace, pipeline: ModuleType | None) -> list[dict[str, Any]]:
    through = trained_through(ws, pipeline)
    return ledger.material_since(ws, through[0] if through else 0)


def new_material(ws: Workspace, pipeline: ModuleType | None) -> bool:
    through = trained_through(ws, pipeline)
    files = material_files(ws)
    if through is None:
        return ledger.read_state(ws)["seq"] > 0 or bool(files)
    seq, started = through
    if ledger.read_state(ws)["seq"] > seq:
        return True
    return max((f.stat().st_mtime for f in files), default=0.0) > started
