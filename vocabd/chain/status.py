"""The chain's status, for `vocabd status` and a foreground run: the record with its live training progress,
the active adapter, the last report and the general-speech pool."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from vocabd.chain import record as state
from vocabd.errors import VocabdError
from vocabd.files import CorruptFile
from vocabd.workspace import Workspace, phase_name


def chain_state(ws: Workspace) -> dict[str, Any]:
    """For `vocabd status` and a foreground run: the chain record, its live training progress, the active
    adapter and the last report. `resume` is `[name, phase, stage]` while the chain has work left; `refused`
    says why the latest start was refused (nothing to train on)."""
    record = state.read_record(ws)
    chain = record.chain
    data = chain.to_dict() if chain else {"name": None, "phase": None, "stage": None, "state": "none"}
    live = chain is not None and chain.live
    progress = _progress(ws, chain) if live else (chain.progress if chain else None)
    return {
        **data, "experiment": phase_name(chain.name, chain.phase) if chain else None,
        "progress": asdict(progress) if progress else None,
        "active": _active(ws), "last_report": _last_report(ws), "general": _general_line(ws),
        "resume": [chain.name, chain.phase, chain.stage] if live else None, "refused": record.refused,
    }


def _active(ws: Workspace) -> dict[str, Any] | None:
    from vocabd.asr.active import read_active

    try:
        return read_active(ws)
    except CorruptFile as e:
        raise state.StateCorrupt(str(e)) from None


def _general_line(ws: Workspace) -> str | None:
    from vocabd.general.pool import status_line

    return status_line(ws)


def _progress(ws: Workspace, chain: state.Chain) -> state.Progress | None:
    if chain.stage not in ("train", "poll"):
        return chain.progress
    from vocabd.training.status import read_status

    try:
        status = read_status(ws.run_dir(phase_name(chain.name, chain.phase)), ws.config.train.stall_seconds)
    except VocabdError:
        return chain.progress
    return state.Progress(status.step, status.max_steps, status.eta_seconds, status.state, status.reason)


def _last_report(ws: Workspace) -> str | None:
    reports = sorted(ws.runs.glob("*/report.md"), key=lambda p: p.stat().st_mtime) if ws.runs.is_dir() else []
    return str(reports[-1]) if reports else None
