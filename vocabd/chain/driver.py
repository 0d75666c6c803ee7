"""One step of the chain, for both drivers: the daemon's queue (`vocabd.chain.queue`) and a foreground run
(`vocabd.chain.foreground`).

The task holding the record's token runs its stage through the pipeline and moves the record on: to the
next stage, to a retry of this one (the policy is the stage's in `vocabd.chain.spec`: the pipeline gives
up after its `max_attempts`, the driver waits `retry_delay` in between), or to done or failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from vocabd.chain import record as state
from vocabd.chain import spec
from vocabd.chain.stages import Pipeline
from vocabd.log import get_logger
from vocabd.workspace import Workspace

log = get_logger("vocabd.chain")


@dataclass
class NextTask:
    token: str
    name: str
    phase: str
    stage: str
    attempt: int
    delay: float
    repeat: int

    def args(self) -> tuple[str, str, str, str, int]:
        return self.name, self.phase, self.stage, self.token, self.attempt


def run_task(ws: Workspace, pipeline: Pipeline, token: str, retry_first: float) -> NextTask | None:
    """Run the stage the record names for `token`; returns the task to run next (None: nothing, the chain
    ended or this task was superseded). A torn record raises StateCorrupt: nothing is moved."""
    chain = state.begin(ws, token)
    if chain is None:
        log.info("stage.superseded", token=token)
        return None
    name, phase, stage, attempt, repeat = chain.name, chain.phase, chain.stage, chain.attempt, chain.repeat
    (log.debug if repeat else log.info)("stage.start", chain=name, phase=phase, stage=stage, attempt=attempt)
    try:
        outcome = pipeline.run(ws, name, phase, stage)
    except spec.StageFailed as e:
        return _fail(ws, token, name, phase, stage, str(e))
    except spec.TransientError as e:
        delay = spec.retry_delay(retry_first, attempt)
        log.warning("stage.retry", chain=name, phase=phase, stage=stage, attempt=attempt, delay=delay, error=str(e))
        return _queue(ws, token, name, phase, stage, attempt + 1, delay, 0, str(e))
    except state.StateCorrupt:
        raise
    except Exception as e:  # a bug in a stage must not kill the worker or stall the chain
        log.exception("stage.crashed", chain=name, phase=phase, stage=stage)
        return _fail(ws, token, name, phase, stage, f"{type(e).__name__}: {e}")
    again = outcome.next_stage == stage and (outcome.next_phase or phase) == phase
    (log.debug if again else log.info)("stage.done", chain=name, phase=phase, stage=stage,
                                       next_stage=outcome.next_stage, next_phase=outcome.next_phase, runs=repeat + 1)
    if outcome.next_stage is None:
        if state.finish(ws, token):
            log.info("chain.done", chain=name, phase=phase)
        return None
    return _queue(ws, token, name, outcome.next_phase or phase, outcome.next_stage, 1, float(outcome.delay or 0.0),
                  repeat + 1 if again else 0, None)


def _queue(ws: Workspace, token: str, name: str, phase: str, stage: str, attempt: int, delay: float, repeat: int,
           error: str | None) -> NextTask | None:
    new = state.set_queued(ws, name, phase, stage, attempt, delay, after=token, repeat=repeat, error=error)
    if new is None:
        log.warning("stage.discarded", chain=name, phase=phase, stage=stage, reason="superseded or interrupted")
        return None
    return NextTask(new, name, phase, stage, attempt, delay, repeat)


def _fail(ws: Workspace, token: str, name: str, phase: str, stage: str, error: str) -> None:
    state.fail(ws, token, error)
    log.error("chain.failed", chain=name, phase=phase, stage=stage, error=error)
    return None
