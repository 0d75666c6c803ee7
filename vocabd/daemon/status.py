"""`vocabd status`: daemon up/down, queue, chain position, active adapter, last report, untrained inbox material."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

from vocabd.daemon import journal
from vocabd.daemon.inbox import REJECTED, inbox_entries
from vocabd.daemon.lock import holder
from vocabd.corrections.store import read_proposed
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
        "proposed_terms": sorted(read_proposed(ws)),
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
    if status.get("proposed_terms"):
        lines.append(f"proposed   jargon from your corrections: {', '.join(status['proposed_terms'])} "
                     "(vocabd terms accept, or vocabd terms reject TERM)")
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


# --follow ----------------------------------------------------------------------------------------

FOLLOW_CHECK_S = 1.0
ORPHAN_AFTER_S = 120.0  # a queued chain nobody has touched for this long has nobody running it


def follow_status(ws: Workspace, console: Any) -> int:
    """`vocabd status --follow`: the status once, then one live line per stage until the chain ends.

    Returns 0 when the chain finished, 1 when it failed, 2 when nothing runs it."""
    from vocabd.jobs.state import LIVE_STATES, read_chain

    console.print(render_status(collect_status(ws)), highlight=False, markup=False, soft_wrap=True)
    chain = read_chain(ws) or {}
    if chain.get("state") not in LIVE_STATES:
        console.print("no chain is running; nothing to follow", highlight=False, markup=False)
        return 0
    while chain.get("state") in LIVE_STATES:
        if _orphaned(ws, chain):
            console.print(f"chain {chain.get('name')} waits at {chain.get('phase')}/{chain.get('stage')} and "
                          "nothing runs it: `vocabd start` (daemon) or `vocabd run --foreground`", highlight=False,
                          markup=False)
            return 2
        chain = _follow_stage(ws, chain, console)
    final = read_chain(ws) or {}
    console.print(f"chain {final.get('name')} {final.get('state')}" + "".join(
        f"; {label} {final[key]}" for key, label in (("failed", "see"), ("last_report", "report")) if final.get(key)),
        highlight=False, soft_wrap=True, markup=False)
    return 1 if final.get("state") == "failed" else 0


def _follow_stage(ws: Workspace, chain: dict[str, Any], console: Any) -> dict[str, Any]:
    """One live line while the chain stays at this stage; returns the chain as it is afterwards."""
    from vocabd.jobs.state import LIVE_STATES, read_chain
    from vocabd.progress import LiveLine, chain_stage_since, stage_line

    key = _stage_key(chain)
    since = chain_stage_since(chain)
    seen = {"chain": chain}

    def line() -> str:
        current = read_chain(ws) or {}
        if _stage_key(current) == key:
            seen["chain"] = current
        return stage_line(ws, seen["chain"], since)

    with LiveLine(console, line) as live:
        while True:
            time.sleep(FOLLOW_CHECK_S)
            now = read_chain(ws) or {}
            if _stage_key(now) != key or now.get("state") not in LIVE_STATES or _orphaned(ws, now):
                break
        moved_on = _stage_key(now) != key and now.get("state") in LIVE_STATES + ("done",)
        live.finish(stage_line(ws, {**seen["chain"], "state": "done in" if moved_on else now.get("state")}, since))
    return now


def _stage_key(chain: dict[str, Any]) -> tuple[Any, Any, Any]:
    return chain.get("name"), chain.get("phase"), chain.get("stage")


def _orphaned(ws: Workspace, chain: dict[str, Any]) -> bool:
    """No daemon, no stage running and no update for a while: nobody is going to move this chain."""
    from vocabd.progress import chain_stage_since

    if holder(ws) is not None or chain.get("state") == "running":
        return False
    since = chain_stage_since(chain)
    return since is not None and time.time() - since > ORPHAN_AFTER_S
