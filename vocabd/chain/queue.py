"""The queue driver: the workspace's Huey queue (`queue.db`) and its one task, run a chain stage and
enqueue the next.

The stages come from a `Pipeline` (`vocabd.chain.stages.PIPELINE` unless a test hands in another). Huey
itself never retries: the chain record (`vocabd.chain.record`) says which stage runs and with which
attempt, and `vocabd.chain.driver` moves it on. Huey removes a task from SQLite when a worker takes it,
so the record, not the queue, is what a restarted daemon recovers from.
"""

from __future__ import annotations

import time

from huey import SqliteHuey

from vocabd.chain import driver
from vocabd.chain import record as state
from vocabd.chain.serializer import JsonSerializer
from vocabd.chain.stages import PIPELINE, Pipeline
from vocabd.log import get_logger
from vocabd.timing import Timing
from vocabd.workspace import Workspace

log = get_logger("vocabd.queue")

TASK_NAME = "vocabd.stage"


def open_huey(ws: Workspace) -> SqliteHuey:
    return SqliteHuey("vocabd", filename=str(ws.queue_db), results=False, utc=True, serializer=JsonSerializer())


class ChainQueue:
    """One workspace's queue: enqueue stages, run them, recover after a crash."""

    def __init__(self, ws: Workspace, retry_delay: float, pipeline: Pipeline = PIPELINE):
        """`retry_delay`: seconds before the first retry of a stage that hit a transient error."""
        self.ws, self.retry_delay, self.pipeline = ws, retry_delay, pipeline
        self.huey = open_huey(ws)
        self._task = self.huey.task(name=TASK_NAME)(self.execute)

    def enqueue(self, name: str, phase: str, stage: str, delay: float = 0.0, attempt: int = 1,
                after: str | None = None, repeat: int = 0) -> str | None:
        """Name the stage in the chain record, then enqueue it; with `after` only if the record still names
        the task that calls this. `repeat` counts a stage re-scheduling itself (poll): those log at debug."""
        token = state.set_queued(self.ws, name, phase, stage, attempt, delay, after=after, repeat=repeat)
        if token is None:
            log.warning("stage.discarded", chain=name, phase=phase, stage=stage, reason="superseded or interrupted")
            return None
        self._put(driver.NextTask(token, name, phase, stage, attempt, delay, repeat))
        return token

    def _put(self, task: driver.NextTask) -> None:
        if task.delay > 0:
            self._task.schedule(args=task.args(), delay=task.delay)
        else:
            self._task(*task.args())
        (log.debug if task.repeat else log.info)("stage.queued", chain=task.name, phase=task.phase, stage=task.stage,
                                                  attempt=task.attempt, delay=round(task.delay, 1))

    def start_chain(self) -> str:
        name, phase, stage = self.pipeline.start(self.ws)
        log.info("chain.start", chain=name)
        self.enqueue(name, phase, stage)
        return name

    def recover(self) -> bool:
        """Re-enqueue the record's stage if a crash took it out of the queue; True when it did."""
        chain = state.current(self.ws)
        if chain is None or not chain.live or chain.token in self.queued_tokens():
            return False
        delay = max(0.0, chain.eta_epoch - time.time()) if chain.state == "queued" else 0.0
        log.warning("stage.recovered", chain=chain.name, phase=chain.phase, stage=chain.stage, was=chain.state)
        return bool(self.enqueue(chain.name, chain.phase, chain.stage, delay, chain.attempt, repeat=chain.repeat))

    def revive_lost(self, grace: float = 60.0) -> bool:
        """While running: a stage the record calls queued that the queue lost (an enqueue that failed, say on
        a locked database) is enqueued again once it is `grace` seconds overdue."""
        chain = state.current(self.ws)
        if chain is None or chain.state != "queued" or time.time() < chain.eta_epoch + grace:
            return False
        if chain.token in self.queued_tokens():
            return False
        log.warning("stage.lost", chain=chain.name, phase=chain.phase, stage=chain.stage)
        return bool(self.enqueue(chain.name, chain.phase, chain.stage, 0.0, chain.attempt, after=chain.token,
                                 repeat=chain.repeat))

    def queued_tokens(self) -> set[str]:
        tasks = self.huey.pending() + self.huey.scheduled()
        return {t.args[3] for t in tasks if t.name == TASK_NAME and len(t.args or ()) == 5}

    def counts(self) -> dict[str, int]:
        return {"pending": self.huey.pending_count(), "scheduled": self.huey.scheduled_count()}

    def mark_interrupted(self) -> bool:
        """At shutdown: a stage still running will be run again by the next daemon; True if there was one."""
        chain = state.interrupt(self.ws)
        if chain is None:
            return False
        log.warning("stage.interrupted", chain=chain.name, phase=chain.phase, stage=chain.stage)
        return True

    def execute(self, name: str, phase: str, stage: str, token: str, attempt: int) -> None:
        """The Huey task body (its arguments other than the token are for the log and `queued_tokens`)."""
        try:
            task = driver.run_task(self.ws, self.pipeline, token, self.retry_delay)
        except state.StateCorrupt as e:
            log.error("chain.record_unreadable", chain=name, phase=phase, stage=stage, error=str(e))
            return
        if task is not None:
            self._put(task)
