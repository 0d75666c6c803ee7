"""The foreground driver (`vocabd run --foreground`, `vocabd demo`): the daemon's chain, run synchronously
in one terminal.

The same steps (`vocabd.chain.driver.run_task`) the queue's tasks take, in a loop, holding the workspace
lock as a foreground run; while a stage runs, one live line per stage (`vocabd.chain.progress`) follows it,
as the stage's `show` in `vocabd.chain.spec` says. An unfinished chain in the chain record is continued.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from vocabd.chain import record as state
from vocabd.chain import spec
from vocabd.chain.driver import NextTask, run_task
from vocabd.chain.lock import FOREGROUND, DaemonLock
from vocabd.chain.progress import LiveLine, stage_line
from vocabd.chain.stages import PIPELINE, Pipeline
from vocabd.chain.status import chain_state
from vocabd.inbox.ingest import ingest_inbox, print_outcomes
from vocabd.log import get_logger
from vocabd.timing import Timing
from vocabd.workspace import Workspace


def take_in(ws: Workspace, console: Console) -> int:
    """Handle what waits in inbox/ the way the daemon would; returns how many drops were taken in."""
    outcomes = ingest_inbox(ws)
    print_outcomes(console, outcomes)
    return sum(o.status == "done" for o in outcomes)


def run_foreground(ws: Workspace, retry_delay: float, console: Console | None = None, restart: bool = False,
                   pipeline: Pipeline = PIPELINE) -> dict[str, Any]:
    """Run (or continue) the chain to its end, holding the workspace; returns the final `chain_state`.
    `retry_delay`: seconds before the first retry of a stage that hit a transient error."""
    console = console or Console(stderr=True)
    with DaemonLock(ws, role=FOREGROUND):  # no daemon drives the chain meanwhile; `vocabd status` names us
        new_material = take_in(ws, console)
        token = _first_task(ws, console, pipeline, fresh=restart or bool(new_material))
        while token is not None:
            try:
                task = _run_one(ws, token, console, pipeline, retry_delay)
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
        final = chain_state(ws)
        if final["state"] == "failed":
            console.print(f"[red]{final['error']}")
        return final


def _first_task(ws: Workspace, console: Console, pipeline: Pipeline, fresh: bool) -> str | None:
    """The token of the stage to run first: the unfinished chain's, or a new chain's first stage."""
    current = state.current(ws)
    if current is not None and current.live and not fresh:
        console.print(f"continuing chain {current.name} at {current.phase}/{current.stage}")
        return state.set_queued(ws, current.name, current.phase, current.stage, current.attempt,
                                repeat=current.repeat)
    name, phase, stage = pipeline.start(ws)
    console.print(f"chain {name} started")
    return state.set_queued(ws, name, phase, stage)


def _run_one(ws: Workspace, token: str, console: Console, pipeline: Pipeline, retry_first: float) -> NextTask | None:
    chain = state.current(ws)
    if chain is None:
        return None
    show = spec.stage(chain.stage).show
    if show == "training":
        return _follow_training(ws, token, chain, console, pipeline, retry_first)
    if show == "quiet":
        return run_task(ws, pipeline, token, retry_first)
    line_chain, since = {"name": chain.name, "phase": chain.phase, "stage": chain.stage, "state": "running"}, time.time()
    if show == "own":
        task = run_task(ws, pipeline, token, retry_first)
        console.print(stage_line(ws, {**line_chain, "state": "done in"}, since), highlight=False, markup=False)
        return task
    with LiveLine(console, lambda: stage_line(ws, line_chain, since)) as line:
        task = run_task(ws, pipeline, token, retry_first)
        line.finish(stage_line(ws, {**line_chain, "state": "done in"}, since))
    return task


def _follow_training(ws: Workspace, token: str, chain: state.Chain, console: Console, pipeline: Pipeline,
                     retry_first: float) -> NextTask | None:
    """Run the stage again and again while training goes on, with a live line from the run's status.json;
    returns the first task of another stage."""
    line_chain = {"name": chain.name, "phase": chain.phase, "stage": chain.stage, "state": "running"}
    with LiveLine(console, lambda: stage_line(ws, line_chain, None)):
        while True:
            task = run_task(ws, pipeline, token, retry_first)
            if task is None or task.stage != chain.stage:
                return task
            time.sleep(task.delay)
            token = task.token
