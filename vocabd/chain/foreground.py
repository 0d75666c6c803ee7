"""`vocabd run --foreground`: the daemon's chain, run synchronously in one terminal.

The same steps (`vocabd.jobs.driver.run_task`) the Huey tasks take, in a loop, holding the workspace
lock as a foreground run; while a stage runs one live line per stage (vocabd.progress) follows it.
An unfinished chain in the chain record is continued.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from vocabd.daemon.lock import FOREGROUND, DaemonLock
from vocabd.daemon.timing import Timing
from vocabd.jobs import pipeline, state
from vocabd.jobs.driver import NextTask, run_task
from vocabd.log import get_logger
from vocabd.progress import LiveLine, stage_line
from vocabd.workspace import Workspace

log = get_logger(__name__)

OWN_PROGRESS = ("synthesize",)  # draws its own progress bar (clips made / to make)


def ingest_inbox(ws: Workspace, console: Console) -> int:
    """Handle what waits in inbox/ the way the daemon would; returns how many drops were taken in."""
    from vocabd import ingest

    outcomes = ingest.ingest_inbox(ws)
    ingest.print_outcomes(console, outcomes)
    return sum(o.status == "done" for o in outcomes)


def run_foreground(ws: Workspace, console: Console | None = None, restart: bool = False) -> dict[str, Any]:
    """Run (or continue) the chain to its end, holding the workspace; returns the final `chain_state`."""
    console = console or Console(stderr=True)
    with DaemonLock(ws, role=FOREGROUND):  # no daemon drives the chain meanwhile; `vocabd status` names us
        new_material = ingest_inbox(ws, console)
        token = _first_task(ws, console, fresh=restart or bool(new_material))
        retry_first = Timing.from_env().retry_delay
        while token is not None:
            try:
                task = _run_one(ws, token, console, retry_first)
            except KeyboardInterrupt:
                chain = state.interrupt(ws)
                where = f"{chain.phase}/{chain.stage}" if chain else "the current stage"
                console.print(f"[yellow]stopped at {where}; `vocabd run --foreground` continues from there "
                              "(a training process keeps running in the background and is picked up again)")
                raise
            if task is not None and task.attempt > 1:
                chain = state.current(ws)
                console.print(f"[yellow]{task.stage} hit a transient error ({chain.error if chain else ''}); "
                              f"retrying in {task.delay:.0f} s")
            if task is not None:
                time.sleep(task.delay)
            token = task.token if task else None
        final = pipeline.chain_state(ws)
        if final["state"] == "failed":
            console.print(f"[red]{final['error']}")
        return final


def _first_task(ws: Workspace, console: Console, fresh: bool) -> str | None:
    """The token of the stage to run first: the unfinished chain's, or a new chain's first stage."""
    current = state.current(ws)
    if current is not None and current.live and not fresh:
        console.print(f"continuing chain {current.name} at {current.phase}/{current.stage}")
        return state.set_queued(ws, current.name, current.phase, current.stage, current.attempt,
                                repeat=current.repeat)
    name, phase, stage = pipeline.start_chain(ws)
    console.print(f"chain {name} started")
    return state.set_queued(ws, name, phase, stage)


def _run_one(ws: Workspace, token: str, console: Console, retry_first: float) -> NextTask | None:
    chain = state.current(ws)
    if chain is None:
        return None
    if chain.stage == "poll":
        return _follow_training(ws, token, chain, console, retry_first)
    if chain.stage == "train":  # only launches the training process; the poll stage's line follows it
        return run_task(ws, pipeline, token, retry_first)
    line_chain, since = {"name": chain.name, "phase": chain.phase, "stage": chain.stage, "state": "running"}, time.time()
    if chain.stage in OWN_PROGRESS:
        task = run_task(ws, pipeline, token, retry_first)
        console.print(stage_line(ws, {**line_chain, "state": "done in"}, since), highlight=False, markup=False)
        return task
    with LiveLine(console, lambda: stage_line(ws, line_chain, since)) as line:
        task = run_task(ws, pipeline, token, retry_first)
        line.finish(stage_line(ws, {**line_chain, "state": "done in"}, since))
    return task


def _follow_training(ws: Workspace, token: str, chain: state.Chain, console: Console,
                     retry_first: float) -> NextTask | None:
    """Poll until training ends, with a live line from the run's status.json; returns the first task that
    is not a poll."""
    line_chain = {"name": chain.name, "phase": chain.phase, "stage": "poll", "state": "running"}
    with LiveLine(console, lambda: stage_line(ws, line_chain, None)):
        while True:
            task = run_task(ws, pipeline, token, retry_first)
            if task is None or task.stage != "poll":
                return task
            time.sleep(task.delay)
            token = task.token
