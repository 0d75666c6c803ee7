"""`vocabd status`: daemon up/down, queue, chain position, active adapter, last report, untrained inbox material."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from vocabd.daemon import journal
from vocabd.daemon.inbox import REJECTED, inbox_entries
from vocabd.daemon.lock import holder
from vocabd.daemon.material import untrained_items
from vocabd.workspace import Workspace

HIDDEN = ("timings", "resume", "experiment", "updated")  # in --json only


def collect_status(ws: Workspace) -> dict[str, Any]:
    info = holder(ws)
    pipeline, chain = _pipeline_state(ws)
    return {
        "workspace": str(ws.root),
        "daemon": {"running": info is not None, **(info or {})},
        "queue": queue_status(ws),
        "chain": chain,
        "inbox": inbox_status(ws, pipeline),
    }


def queue_status(ws: Workspace) -> dict[str, Any]:
    counts = {"pending": 0, "scheduled": 0}
    if ws.queue_db.exists():
        from vocabd.daemon.queue import open_huey

        huey = open_huey(ws)
        counts = {"pending": huey.pending_count(), "scheduled": huey.scheduled_count()}
        huey.storage.close()
    current = journal.cursor(ws)
    last_chain = journal.last_chain(ws)
    failures = journal.failures(ws)
    failed = [f for f in failures if last_chain and f.get("name") == last_chain.get("name")]
    running = 1 if current and current.get("state") == "running" else 0
    return {**counts, "running": running, "failed": len(failed),  # failed stages of the latest chain
            "last_failure": failures[-1] if failures else None, "current": current, "last_chain": last_chain}


def _pipeline_state(ws: Workspace) -> tuple[ModuleType | None, dict[str, Any]]:
    """The pipeline's own view (phase, stage, progress, active adapter and its WERs, last report)."""
    try:
        from vocabd.daemon.queue import load_pipeline

        pipeline = load_pipeline()
        return pipeline, dict(pipeline.chain_state(ws) or {})
    except Exception as e:  # status must still show everything else
        return None, {"error": f"{type(e).__name__}: {e}"}


def inbox_status(ws: Workspace, pipeline: ModuleType | None) -> dict[str, Any]:
    rejected = ws.inbox / REJECTED
    return {
        "waiting": [p.name for p in inbox_entries(ws)],
        "not_trained": [{"kind": i["kind"], "files": i["files"], "ingested": i["ingested"]}
                        for i in untrained_items(ws, pipeline)],
        "rejected": sorted(p.name for p in rejected.iterdir() if not p.name.endswith(".reason.txt"))
        if rejected.is_dir() else [],
    }


def render_status(status: dict[str, Any]) -> str:
    lines = [f"workspace  {status['workspace']}"]
    d = status["daemon"]
    lines.append(f"daemon     up (pid {d.get('pid')}, since {d.get('started')})" if d["running"] else "daemon     down")
    lines += _queue_lines(status["queue"]) + _chain_lines(status["chain"]) + _inbox_lines(status["inbox"])
    return "\n".join(lines)


def _queue_lines(q: dict[str, Any]) -> list[str]:
    lines = [f"queue      {q['pending']} pending, {q['scheduled']} scheduled, {q['running']} running, "
             f"{q['failed']} failed"]
    current = q.get("current")
    if current:
        attempt = f" (attempt {current['attempt']})" if current.get("attempt", 1) > 1 else ""
        error = f": {current['error']}" if current.get("error") else ""
        lines.append(f"stage      {current['name']} / {current['phase']} / {current['stage']}: "
                     f"{current['state']}{attempt}{error}")
    return lines


def _chain_lines(chain: dict[str, Any]) -> list[str]:
    lines = []
    if chain.get("name"):
        lines.append(f"chain      {chain['name']}: phase {chain.get('phase')}, stage {chain.get('stage')}, "
                     f"{chain.get('state')} (started {chain.get('started')})")
    progress = chain.get("progress") or {}
    if progress.get("max_steps"):
        eta = f", about {progress['eta_seconds']:.0f} s left" if progress.get("eta_seconds") else ""
        lines.append(f"progress   step {progress.get('step')} of {progress['max_steps']}{eta}")
    active = chain.get("active")
    if active:
        lines.append(f"active     {active.get('adapter')} (promoted {active.get('promoted')})")
        lines.append(f"           primary WER {_num(active.get('base_primary_wer'))} -> {_num(active.get('primary_wer'))}"
                     f", safety WER {_num(active.get('base_safety_wer'))} -> {_num(active.get('safety_wer'))}")
    elif "active" in chain:
        lines.append("active     none (the base model)")
    if chain.get("last_report"):
        lines.append(f"report     {chain['last_report']}")
    if chain.get("failed"):
        lines.append(f"failed     {chain['failed']}")
    known = {"name", "phase", "stage", "state", "started", "progress", "active", "last_report", "failed", *HIDDEN}
    for key, value in chain.items():
        if key not in known and value is not None:
            lines.append(f"{key:<10} {value}")
    return lines


def _inbox_lines(inbox: dict[str, Any]) -> list[str]:
    lines = [f"inbox      {len(inbox['waiting'])} waiting, {len(inbox['not_trained'])} ingested but not trained on, "
             f"{len(inbox['rejected'])} rejected (see inbox/rejected/*.reason.txt)"]
    lines += [f"  waiting: {name}" for name in inbox["waiting"]]
    lines += [f"  new {i['kind']}: {', '.join(i['files'])} ({i['ingested']})" for i in inbox["not_trained"]]
    return lines


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"
