"""The workspace's Huey queue (`queue.db`) and its one task: run a chain stage, enqueue the next.

The stage functions come from the pipeline module (`vocabd.jobs.pipeline`, or `$VOCABD_PIPELINE`):
`run_stage`, `start_chain`, `chain_state`, `TransientError`, `StageFailed`. A TransientError is retried
with a doubling delay; StageFailed (FAILED.md already written) ends the chain.
"""

from __future__ import annotations

import importlib
import os
import time
from types import ModuleType
from typing import Any

from huey import SqliteHuey

from vocabd.daemon import journal, ledger
from vocabd.daemon.serializer import JsonSerializer
from vocabd.daemon.timing import Timing
from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.workspace import Workspace

log = get_logger("vocabd.queue")

PIPELINE_ENV = "VOCABD_PIPELINE"
DEFAULT_PIPELINE = "vocabd.jobs.pipeline"
TASK_NAME = "vocabd.stage"


def load_pipeline() -> ModuleType:
    name = os.environ.get(PIPELINE_ENV) or DEFAULT_PIPELINE
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        raise VocabdError(f"cannot import the pipeline module {name} ({e})") from e
    missing = [a for a in ("run_stage", "start_chain", "chain_state", "TransientError", "StageFailed")
               if not hasattr(module, a)]
    if missing:
        raise VocabdError(f"pipeline module {name} lacks {', '.join(missing)}")
    return module


def open_huey(ws: Workspace) -> SqliteHuey:
    return SqliteHuey("vocabd", filename=str(ws.queue_db), results=False, utc=True, serializer=JsonSerializer())


class ChainQueue:
    """One workspace's queue: enqueue stages, run them, recover after a crash."""

    def __init__(self, ws: Workspace, timing: Timing, pipeline: ModuleType):
        self.ws, self.timing, self.pipeline = ws, timing, pipeline
        self.huey = open_huey(ws)
        self._task = self.huey.task(name=TASK_NAME)(self.execute)

    def enqueue(self, name: str, phase: str, stage: str, delay: float = 0.0, attempt: int = 1,
                after: str | None = None, repeat: int = 0) -> str | None:
        """Journal, then enqueue; with `after` only if the journal still names the task that calls this.
        `repeat` counts a stage re-scheduling itself (poll); those runs log at debug level."""
        token = journal.set_queued(self.ws, name, phase, stage, attempt, delay, after=after, repeat=repeat)
        if token is None:
            log.warning("stage.discarded", chain=name, phase=phase, stage=stage, reason="superseded or interrupted")
            return None
        args = (name, phase, stage, token, attempt)
        if delay > 0:
            self._task.schedule(args=args, delay=delay)
        else:
            self._task(*args)
        level = log.debug if repeat else log.info
        level("stage.queued", chain=name, phase=phase, stage=stage, attempt=attempt, delay=round(delay, 1))
        return token

    def start_chain(self) -> str:
        material = ledger.read_state(self.ws)["seq"]
        name, phase, stage = self.pipeline.start_chain(self.ws)
        journal.chain_started(self.ws, name, material)
        log.info("chain.start", chain=name, material_seq=material)
        self.enqueue(name, phase, stage)
        return name

    def recover(self) -> bool:
        """Re-enqueue the journal's stage if a crash took it out of the queue; True when it did."""
        current = journal.cursor(self.ws)
        if current is None or current.get("state") not in journal.LIVE:
            return False
        if current["token"] in self.queued_tokens():
            return False
        delay = max(0.0, current.get("eta_epoch", 0) - time.time()) if current["state"] == "queued" else 0.0
        log.warning("stage.recovered", chain=current["name"], phase=current["phase"], stage=current["stage"],
                    was=current["state"])
        self.enqueue(current["name"], current["phase"], current["stage"], delay, current.get("attempt", 1))
        return True

    def revive_lost(self, grace: float = 60.0) -> bool:
        """While running: a stage the journal calls queued that the queue lost (an enqueue that failed, say on
        a locked database) is enqueued again once it is `grace` seconds overdue."""
        current = journal.cursor(self.ws)
        if not current or current.get("state") != "queued" or time.time() < current.get("eta_epoch", 0) + grace:
            return False
        if current["token"] in self.queued_tokens():
            return False
        log.warning("stage.lost", chain=current["name"], phase=current["phase"], stage=current["stage"])
        return bool(self.enqueue(current["name"], current["phase"], current["stage"], 0.0, current.get("attempt", 1),
                                 after=current["token"], repeat=current.get("repeat", 0)))

    def queued_tokens(self) -> set[str]:
        tasks = self.huey.pending() + self.huey.scheduled()
        return {t.args[3] for t in tasks if t.name == TASK_NAME and len(t.args or ()) == 5}

    def counts(self) -> dict[str, int]:
        return {"pending": self.huey.pending_count(), "scheduled": self.huey.scheduled_count()}

    def mark_interrupted(self) -> bool:
        """At shutdown: a stage still running will be run again by the next daemon; True if there was one."""
        current = journal.cursor(self.ws)
        if not current or current.get("state") != "running":
            return False
        journal.update(self.ws, current["token"], new_token=True, state="interrupted", interrupted=ledger.now_iso())
        log.warning("stage.interrupted", chain=current["name"], phase=current["phase"], stage=current["stage"])
        return True

    def execute(self, name: str, phase: str, stage: str, token: str, attempt: int) -> None:
        """The Huey task body."""
        current = journal.update(self.ws, token, state="running", started=ledger.now_iso())
        if current is None:
            log.info("stage.superseded", chain=name, phase=phase, stage=stage)
            return
        repeat = current.get("repeat", 0)
        (log.debug if repeat else log.info)("stage.start", chain=name, phase=phase, stage=stage, attempt=attempt)
        start = time.monotonic()
        try:
            outcome = self.pipeline.run_stage(self.ws, name, phase, stage)
        except self.pipeline.StageFailed as e:
            self._fail(token, name, phase, stage, str(e))
        except self.pipeline.TransientError as e:
            self._retry(token, name, phase, stage, attempt, e)
        except Exception as e:  # a bug in a stage must not kill the worker or stall the journal
            log.exception("stage.crashed", chain=name, phase=phase, stage=stage)
            self._fail(token, name, phase, stage, f"{type(e).__name__}: {e}")
        else:
            self._advance(token, name, phase, stage, outcome, time.monotonic() - start, repeat)

    def _advance(self, token: str, name: str, phase: str, stage: str, outcome: Any, seconds: float,
                 repeat: int) -> None:
        again = outcome.next_stage == stage and (outcome.next_phase or phase) == phase
        (log.debug if again else log.info)("stage.done", chain=name, phase=phase, stage=stage,
                                           seconds=round(seconds, 2), next_stage=outcome.next_stage,
                                           next_phase=outcome.next_phase, runs=repeat + 1)
        if outcome.next_stage is None:
            if journal.update(self.ws, token, state="done", finished=ledger.now_iso()):
                log.info("chain.done", chain=name, phase=phase)
            return
        self.enqueue(name, outcome.next_phase or phase, outcome.next_stage, float(outcome.delay or 0.0), after=token,
                     repeat=repeat + 1 if again else 0)

    def _retry(self, token: str, name: str, phase: str, stage: str, attempt: int, error: Exception) -> None:
        if attempt >= self.timing.max_attempts:
            self._fail(token, name, phase, stage, f"gave up after {attempt} attempts: {error}")
            return
        delay = self.timing.retry_delay * 2 ** (attempt - 1)
        log.warning("stage.retry", chain=name, phase=phase, stage=stage, attempt=attempt, delay=delay,
                    error=str(error))
        self.enqueue(name, phase, stage, delay, attempt + 1, after=token)

    def _fail(self, token: str, name: str, phase: str, stage: str, error: str) -> None:
        journal.update(self.ws, token, state="failed", error=error, finished=ledger.now_iso())
        log.error("chain.failed", chain=name, phase=phase, stage=stage, error=error)
