"""Has the workspace material no training chain has started from yet? (retraining on new drops and at login)

The chain record keeps the inbox ledger's material counter and the time of the latest chain's start (or
refused start), whoever started it: the daemon, `vocabd run` or `vocabd run --foreground`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vocabd.inbox import ledger
from vocabd.chain import record as state
from vocabd.workspace import JARGON_FILE, LONG_RECORDINGS, MY_VOICE_EVAL, MY_VOICE_TRAIN, VOICE_REF, Workspace


def material_files(ws: Workspace) -> list[Path]:
    """The user's material in data/ (what the inbox writes, or what a user placed there by hand)."""
    names = [JARGON_FILE, VOICE_REF, f"{MY_VOICE_TRAIN}.jsonl", f"{MY_VOICE_EVAL}.jsonl", LONG_RECORDINGS]
    return [ws.data / n for n in names if (ws.data / n).exists()]


def untrained_items(ws: Workspace) -> list[dict[str, Any]]:
    return ledger.material_since(ws, state.read_record(ws).considered_seq)


def new_material(ws: Workspace) -> bool:
    record = state.read_record(ws)
    files = material_files(ws)
    if not record.considered:
        return ledger.read_state(ws)["seq"] > 0 or bool(files)
    if ledger.read_state(ws)["seq"] > record.considered_seq:
        return True
    return max((f.stat().st_mtime for f in files), default=0.0) > record.considered_epoch
