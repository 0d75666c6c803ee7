"""`vocabd status`: daemon up/down, queue, chain position, active adapter, last report, untrained inbox material."""

from __future__ import annotations

from typing import Any

from vocabd.daemon import journal, ledger
from vocabd.daemon.inbox import REJECTED, inbox_entries
from vocabd.daemon.lock import holder
from vocabd.workspace import Workspace


def collect_status(ws: Workspace) -> dict[str, Any]:
    info = holder(ws)
    return {
        "workspace": str(ws.root),
        "daemon": {"running": info is not None, **(info or {})},
        "queue": queue_status(ws),
        "chain": pipeline_state(ws),
        "inbox": inbox_status(ws),
    }


def queue_status(ws: Workspace) -> dict[str, Any]:
    counts = {"pending": 0, "scheduled": 0}
    if ws.queue_db.exists():
        from vocabd.daemon.queue import open_huey

        huey = open_huey(ws)
        counts = {"pending": huey.pending_count(), "scheduled": huey.scheduled_count()}
        huey.storage.close()
    current = journal.cursor(ws)
    failures = journal.failures(ws)
    running = 1 if current and current.get("state") == "running" else 0
    return {**counts, "running": running, "failed": len(failures), "last_failure": failures[-1] if failures else None,
            "current": current, "last_chain": journal.last_chain(ws)}


def pipeline_state(ws: Workspace) -> dict[str, Any]:
    """The pipeline's own view (phase, stage, progress, active adapter and its WERs, last report)."""
    try:
        from vocabd.daemon.queue import load_pipeline

        return dict(load_pipeline().chain_state(ws) or {})
    except Exception as e:  # status must still show everything else
        return {"error": f"{type(e).__name__}: {e}"}


def inbox_status(ws: Workspace) -> dict[str, Any]:
    last = journal.last_chain(ws) or {}
    untrained = ledger.material_since(ws, last.get("material_seq", 0))
    rejected = ws.inbox / REJECTED
    return {
        "waiting": [p.name for p in inbox_entries(ws)],
        "not_trained": [{"kind": i["kind"], "files": i["files"], "ingested": i["ingested"]} for i in untrained],
        "rejected": sorted(p.name for p in rejected.iterdir() if not p.name.endswith(".reason.txt"))
        if rejected.is_dir() else [],
    }


def render_status(status: dict[str, Any]) -> str:
    lines = [f"workspace  {status['workspace']}"]
    d = status["daemon"]
    lines.append(f"daemon     up (pid {d.get('pid')}, since {d.get('started')})" if d["running"] else "daemon     down")
    q = status["queue"]
    lines.append(f"queue      {q['pending']} pending, {q['scheduled']} scheduled, {q['running']} running, "
                 f"{q['failed']} failed")
    current = q.get("current")
    if current:
        lines.append(f"stage      {current['name']} / {current['phase']} / {current['stage']}: {current['state']}"
                     + (f" (attempt {current['attempt']})" if current.get("attempt", 1) > 1 else "")
                     + (f" - {current['error']}" if current.get("error") else ""))
    for key, value in status["chain"].items():
        lines.append(f"{key:<10} {_short(value)}")
    inbox = status["inbox"]
    lines.append(f"inbox      {len(inbox['waiting'])} waiting, {len(inbox['not_trained'])} ingested but not trained on, "
                 f"{len(inbox['rejected'])} rejected")
    for name in inbox["waiting"]:
        lines.append(f"  waiting: {name}")
    for item in inbox["not_trained"]:
        lines.append(f"  new {item['kind']}: {', '.join(item['files'])} ({item['ingested']})")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
