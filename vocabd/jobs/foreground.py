"""`vocabd run --foreground`: the daemon's chain, run synchronously in one terminal.

The same `run_stage` calls the Huey tasks make, in a loop; while training runs in its own process
one live line per stage (vocabd.progress) follows it. An unfinished chain in `data/chain.json` is continued.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from vocabd.jobs import pipeline
from vocabd.log import get_logger
from vocabd.progress import LiveLine, stage_line
from vocabd.workspace import Workspace

log = get_logger(__name__)

RETRY_WAIT_S = 5.0
OWN_PROGRESS = ("synthesize",)  # draws its own progress bar (clips made / to make)


def ingest_inbox(ws: Workspace, console: Console) -> int:
    """Handle what waits in inbox/ the way the daemon would; returns how many drops were taken in."""
    from vocabd import ingest

    outcomes = ingest.ingest_inbox(ws)
    ingest.print_outcomes(console, outcomes)
    return sum(o.status == "done" for o in outcomes)


def run_foreground(ws: Workspace, console: Console | None = None, restart: bool = False) -> dict[str, Any]:
    """Run (or continue) the chain to its end; returns the final `chain_state`."""
    console = console or Console(stderr=True)
    new_material = ingest_inbox(ws, console)
    current = pipeline.chain_state(ws)
    if current["resume"] and not restart and not new_material:
        name, phase, stage = current["resume"]
        console.print(f"continuing chain {name} at {phase}/{stage}")
    else:
        name, phase, stage = pipeline.start_chain(ws)
        console.print(f"chain {name} started")
    retries = 0
    while True:
        try:
            outcome = _run_one(ws, name, phase, stage, console)
        except pipeline.TransientError as e:
            retries += 1
            console.print(f"[yellow]{stage} hit a transient error ({e}); retrying in {RETRY_WAIT_S * retries:.0f} s")
            time.sleep(RETRY_WAIT_S * retries)
            continue
        except pipeline.StageFailed as e:
            console.print(f"[red]{e}")
            return pipeline.chain_state(ws)
        except KeyboardInterrupt:
            console.print(f"[yellow]stopped at {phase}/{stage}; `vocabd run --foreground` continues from there "
                          "(a training process keeps running in the background and is picked up again)")
            raise
        retries = 0
        if outcome.next_stage is None:
            return pipeline.chain_state(ws)
        phase, stage = outcome.next_phase or phase, outcome.next_stage


def _run_one(ws: Workspace, name: str, phase: str, stage: str, console: Console) -> pipeline.StageOutcome:
    if stage == "poll":
        return _follow_training(ws, name, phase, console)
    if stage == "train":  # only launches the training process; the poll stage's line follows it
        return pipeline.run_stage(ws, name, phase, stage)
    chain, since = {"name": name, "phase": phase, "stage": stage, "state": "running"}, time.time()
    if stage in OWN_PROGRESS:
        outcome = pipeline.run_stage(ws, name, phase, stage)
        console.print(stage_line(ws, {**chain, "state": "done in"}, since), highlight=False, markup=False)
        return outcome
    with LiveLine(console, lambda: stage_line(ws, chain, since)) as line:
        outcome = pipeline.run_stage(ws, name, phase, stage)
        line.finish(stage_line(ws, {**chain, "state": "done in"}, since))
    return outcome


def _follow_training(ws: Workspace, name: str, phase: str, console: Console) -> pipeline.StageOutcome:
    """Poll until training ends, with a live line from the run's status.json; returns the first outcome
    that is not a poll."""
    chain = {"name": name, "phase": phase, "stage": "poll", "state": "running"}
    with LiveLine(console, lambda: stage_line(ws, chain, None)):
        while True:
            try:
                outcome = pipeline.run_stage(ws, name, phase, "poll")
            except pipeline.TransientError:
                time.sleep(RETRY_WAIT_S)
                continue
            if outcome.next_stage != "poll":
                return outcome
            time.sleep(outcome.delay)
