"""The chain as one table: its phases, its ordered stages and each stage's retry and resume policy.

A stage runs in a phase and ends in a `StageOutcome`: the stage named next (in this phase or the next),
or again after a delay (poll), or nothing (the chain is done). A stage raises `TransientError` for what is
worth another run (a killed worker, a busy lock) and `StageFailed` for what is not; the driver retries a
transient error after `retry_delay` seconds, doubling, up to the stage's `max_attempts` runs in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocabd.errors import VocabdError
from vocabd.workspace import PHASES

MAX_FAILURES = 20  # failed stages remembered in the record, across chains


@dataclass(frozen=True)
class Stage:
    name: str
    after: str | None  # the next stage in the same phase; None: the phase ends here
    show: str  # how a foreground run shows it: "line" (a live line), "own" (its own progress bar),
    #            "quiet" (too short to follow), "training" (the run's status.json, until training ends)
    max_attempts: int = 3  # runs of the stage that hit a transient error before the chain gives up
    max_resumes: int = 0  # a crashed or stalled training run is resumed this often, per phase


STAGES: tuple[Stage, ...] = (
    Stage("synthesize", after="mix", show="own"),
    Stage("mix", after="train", show="line"),
    Stage("train", after="poll", show="quiet"),
    Stage("poll", after="evaluate", show="training", max_resumes=2),
    Stage("evaluate", after=None, show="line"),
)
STAGE_NAMES = tuple(s.name for s in STAGES)
FIRST_STAGE = STAGES[0].name


class TransientError(VocabdError):
    """Worth retrying (a killed subprocess, a busy lock): the driver runs the stage again, at most the
    stage's `max_attempts` runs in all."""


class StageFailed(VocabdError):
    """The stage failed for good: FAILED.md is written and the chain stops."""

    def __init__(self, message: str, failed_file: Path | None = None):
        super().__init__(message)
        self.failed_file = failed_file


@dataclass
class StageOutcome:
    next_stage: str | None  # the stage to enqueue next; None: the chain ends
    next_phase: str | None = None  # set when the next stage belongs to the next phase
    delay: float = 0.0  # seconds before the next stage runs (poll re-schedules itself)
    result: Any = None  # the stage's typed result, kept in the record under its phase and stage


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise VocabdError(f"unknown stage {name!r} (stages: {', '.join(STAGE_NAMES)})")


def check(phase: str, name: str) -> Stage:
    if phase not in PHASES:
        raise VocabdError(f"unknown phase {phase!r} (phases: {', '.join(PHASES)})")
    return stage(name)


def advance(phase: str, name: str, result: Any = None) -> StageOutcome:
    """The stage that follows `name`: the next in the table, else the next phase's first, else none."""
    after = stage(name).after
    if after is not None:
        return StageOutcome(after, result=result)
    later = PHASES[PHASES.index(phase) + 1:]
    return StageOutcome(FIRST_STAGE, next_phase=later[0], result=result) if later else StageOutcome(None, result=result)


def again(name: str, delay: float, result: Any = None) -> StageOutcome:
    """The stage runs once more after `delay` seconds (its work is not done yet)."""
    return StageOutcome(name, delay=delay, result=result)


def retry_delay(first: float, attempt: int) -> float:
    """Seconds before the next run of a stage whose run `attempt` hit a transient error (doubling)."""
    return first * 2 ** (attempt - 1)
