"""The chain's poll stage: one look at a training run, resuming it when it crashed or stalled."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from vocabd.log import get_logger
from vocabd.timing import Timing
from vocabd.workspace import Workspace

log = get_logger(__name__)


def poll_seconds() -> float:
    """Delay between polls (`Timing.poll`)."""
    return Timing.from_env().poll


class TrainingFailed(Exception):
    """The run failed for good (resumes used up); carries the run's own reason."""


@dataclass
class PollResult:
    finished: bool
    step: int
    max_steps: int
    eta_seconds: float | None
    resumed: bool = False
    pid: int | None = None  # the relaunched trainer's, when resumed


def poll_training(ws: Workspace, experiment: str, phase: str, resumes_done: int, max_resumes: int) -> PollResult:
    """One look at the run; a crashed or stalled run is resumed from its last checkpoint, `max_resumes` times."""
    from vocabd.training.phase import launch_training
    from vocabd.training.status import read_status

    status = read_status(ws.run_dir(experiment), ws.config.train.stall_seconds)
    if status.state == "finished":
        if not (ws.run_dir(experiment) / "best").is_dir():
            raise TrainingFailed(f"run {experiment} finished but wrote no best/ adapter")
        return PollResult(True, status.step, status.max_steps, 0.0)
    if status.state == "running":
        return PollResult(False, status.step, status.max_steps, status.eta_seconds)
    reason = status.error or status.reason or status.state
    if status.state == "failed" and status.error:  # the trainer itself reported an error: resuming repeats it
        raise TrainingFailed(f"run {experiment} failed: {status.error}")
    if resumes_done >= max_resumes:
        raise TrainingFailed(f"run {experiment} {status.state} after {resumes_done} resume(s): {reason}")
    if status.state == "stalled":
        _stop_stalled(ws, experiment, status.pid)
    log.warning("training_resumed", experiment=experiment, state=status.state, reason=reason, step=status.step)
    pid = launch_training(ws, experiment, phase)
    return PollResult(False, status.step, status.max_steps, status.eta_seconds, resumed=True, pid=pid)


def _stop_stalled(ws: Workspace, experiment: str, pid: int | None) -> None:
    """SIGTERM the stalled trainer, but only a process proven to be it (status.json's pid is only data)."""
    from vocabd.training.status import is_trainer

    if not is_trainer(ws.run_dir(experiment), pid):
        log.warning("training_not_stopped", pid=pid, run=experiment, reason="not this run's training process")
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
