"""`vocabd status`: daemon up/down, queue, chain position, active adapter, last report, untrained inbox material."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from vocabd.daemon.doctor import queue_message, queue_problem
from vocabd.inbox.drops import REJECTED, inbox_entries
from vocabd.corrections.store import read_proposed
from vocabd.chain.lock import DAEMON, holder
from vocabd.daemon.material import untrained_items
from vocabd.errors import VocabdError
from vocabd.chain import record as state
from vocabd.chain.status import chain_state
from vocabd.workspace import Workspace

HIDDEN = ("timings", "resume", "experiment", "updated", "token", "eta_epoch", "repeat", "started_epoch",
          "material", "results", "evaluate_started", "resumes", "train_pid", "attempt", "error")  # in --json only


def collect_status(ws: Workspace) -> dict[str, Any]:
    """Who holds the workspace, the queue, the chain record, the inbox; a broken part says so in its place."""
    info = holder(ws)
    return {
        "workspace": str(ws.root),
        "daemon": {"running": info is not None and info.get("role", DAEMON) == DAEMON, **(info or {})},
        "queue": queue_status(ws),
        "chain": chain_status(ws),
        "inbox": inbox_status(ws),
        "proposed_terms": sorted(read_proposed(ws)),
    }


def queue_status(ws: Workspace) -> dict[str, Any]:
    problem = queue_problem(ws)
    counts: dict[str, Any] = {"pending": 0, "scheduled": 0}
    if problem is None and ws.queue_db.exists():
        from vocabd.chain.queue import open_huey

        huey = open_huey(ws)
        try:
            counts = {"pending": huey.pending_count(), "scheduled": huey.scheduled_count()}
        except sqlite3.DatabaseError as e:
            problem = str(e)
        finally:
            huey.storage.close()
    if problem is not None:
        return {"pending": None, "scheduled": None, "problem": queue_message(ws, problem)}
    try:
        record = state.read_record(ws)
    except state.StateCorrupt:
        return {**counts, "failed": None, "last_failure": None}  # the chain section says why
    latest = record.chain.name if record.chain else None
    failed = [f for f in record.failures if f.name == latest]
    return {**counts, "failed": len(failed),  # failed stages of the latest chain
            "last_failure": vars(record.failures[-1]) if record.failures else None}


def chain_status(ws: Workspace) -> dict[str, Any]:
    """The chain record, with its live training progress, the active adapter and the last report."""
    try:
        return chain_state(ws)
    except state.StateCorrupt as e:
        return {"problem": str(e)}
    except Exception as e:  # status must still show everything else
        return {"problem": f"{type(e).__name__}: {e}"}


def inbox_status(ws: Workspace) -> dict[str, Any]:
    rejected = ws.inbox / REJECTED
    try:
        not_trained = [{"kind": i["kind"], "files": i["files"], "ingested": i["ingested"]}
                       for i in untrained_items(ws)]
    except state.StateCorrupt:
        not_trained = []  # the chain section says why
    except VocabdError as e:
        return {"waiting": [p.name for p in inbox_entries(ws)], "not_trained": [], "rejected": [], "problem": str(e)}
    return {
        "waiting": [p.name for p in inbox_entries(ws)],
        "not_trained": not_trained,
        "rejected": sorted(p.name for p in rejected.iterdir() if not p.name.endswith(".reason.txt"))
        if rejected.is_dir() else [],
    }


def render_status(status: dict[str, Any]) -> str:
    held = status["daemon"].get("pid") is not None or status["daemon"]["running"]
    lines = [f"workspace  {status['workspace']}", _holder_line(status["daemon"])]
    lines += _queue_lines(status["queue"]) + _chain_lines(status["chain"], held) + _inbox_lines(status["inbox"])
    if status.get("proposed_terms"):
        lines.append(f"proposed   jargon from your corrections: {', '.join(status['proposed_terms'])} "
                     "(vocabd terms accept, or vocabd terms reject TERM)")
    return "\n".join(lines)


def _holder_line(d: dict[str, Any]) -> str:
    if d["running"]:
        return f"daemon     up (pid {d.get('pid')}, since {d.get('started')})"
    if d.get("role"):
        return f"daemon     down; a {d['role']} (pid {d.get('pid')}, since {d.get('started')}) holds the workspace"
    return "daemon     down"


def _queue_lines(q: dict[str, Any]) -> list[str]:
    if q.get("problem"):
        return [f"queue      {q['problem']}"]
    failed = "" if q.get("failed") is None else f", {q['failed']} failed"
    return [f"queue      {q['pending']} pending, {q['scheduled']} scheduled{failed}"]


def _chain_lines(chain: dict[str, Any], held: bool) -> list[str]:
    if chain.get("problem"):
        return [f"chain      {chain['problem']}"]
    lines = []
    if chain.get("name"):
        where = chain.get("state")
        if where == "running" and not held:
            where = "running when its daemon or foreground run stopped; it runs again at the next start"
        elif where == "queued" and chain.get("stage") == "poll" and chain.get("repeat") and chain.get("attempt") == 1:
            where = "running (training; looked at every few seconds)"
        attempt = f" (attempt {chain['attempt']})" if (chain.get("attempt") or 1) > 1 else ""
        error = f": {chain['error']}" if chain.get("error") and chain.get("state") != "done" else ""
        lines.append(f"chain      {chain['name']} / {chain.get('phase')} / {chain.get('stage')}: {where}{attempt}{error}"
                     f" (started {chain.get('started')})")
    progress = chain.get("progress") or {}
    if progress.get("max_steps"):
        eta = f", about {progress['eta_seconds']:.0f} s left" if progress.get("eta_seconds") else ""
        tail = f"; {progress['note']}" if progress.get("note") else eta
        lines.append(f"progress   step {progress.get('step')} of {progress['max_steps']}{tail}")
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
    if inbox.get("problem"):
        return [f"inbox      {inbox['problem']}"]
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
    from vocabd.chain.record import LIVE_STATES

    console.print(render_status(collect_status(ws)), highlight=False, markup=False, soft_wrap=True)
    chain = _chain_dict(ws)
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
    final = _chain_dict(ws)
    console.print(f"chain {final.get('name')} {final.get('state')}" + "".join(
        f"; {label} {final[key]}" for key, label in (("failed", "see"), ("last_report", "report")) if final.get(key)),
        highlight=False, soft_wrap=True, markup=False)
    return 1 if final.get("state") == "failed" else 0


def _follow_stage(ws: Workspace, chain: dict[str, Any], console: Any) -> dict[str, Any]:
    """One live line while the chain stays at this stage; returns the chain as it is afterwards."""
    from vocabd.chain.record import LIVE_STATES
    from vocabd.chain.progress import LiveLine, chain_stage_since, stage_line

    key = _stage_key(chain)
    since = chain_stage_since(chain)
    seen = {"chain": chain}

    def line() -> str:
        current = _chain_dict(ws)
        if _stage_key(current) == key:
            seen["chain"] = current
        return stage_line(ws, seen["chain"], since)

    with LiveLine(console, line) as live:
        while True:
            time.sleep(FOLLOW_CHECK_S)
            now = _chain_dict(ws)
            if _stage_key(now) != key or now.get("state") not in LIVE_STATES or _orphaned(ws, now):
                break
        moved_on = _stage_key(now) != key and now.get("state") in LIVE_STATES + ("done",)
        live.finish(stage_line(ws, {**seen["chain"], "state": "done in" if moved_on else now.get("state")}, since))
    return now


def _chain_dict(ws: Workspace) -> dict[str, Any]:
    chain = state.current(ws)
    return chain.to_dict() if chain else {}


def _stage_key(chain: dict[str, Any]) -> tuple[Any, Any, Any]:
    return chain.get("name"), chain.get("phase"), chain.get("stage")


def _orphaned(ws: Workspace, chain: dict[str, Any]) -> bool:
    """No daemon, no stage running and no update for a while: nobody is going to move this chain."""
    from vocabd.chain.progress import chain_stage_since

    if holder(ws) is not None or chain.get("state") == "running":
        return False
    since = chain_stage_since(chain)
    return since is not None and time.time() - since > ORPHAN_AFTER_S
