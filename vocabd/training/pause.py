"""When training pauses, and why: the machine runs on battery, or the other processes leave no core free.

Torch-free. What a pause does (checkpoint, let go of the machine, wait while it holds) is `_pause` in
training/loop.py; this module only says whether one is due and when it ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from vocabd.timing import Timing
from vocabd.training.config import RunConfig
from vocabd.training.heavy import ThreadGovernor, is_busy, usable_cpus
from vocabd.training.power import on_battery


@dataclass(frozen=True)
class Pause:
    """Why training waits, and how to tell it may go on: `holds()` is asked every `every` seconds."""

    reason: str  # "on battery" | "busy": in log.jsonl's paused/resumed events and the log
    note: str  # status.json's reason while paused
    holds: Callable[[], bool]
    every: float


def battery_pause() -> Pause:
    return Pause("on battery", "paused: on battery; [train] pause_on_battery = false trains anyway", on_battery,
                 Timing.from_env().power_check)


def busy_pause(cpus: int, others: float, measure: Callable[[], float], every: float) -> Pause:
    """`measure()`: the other processes' load since its last call; asked once a window, so the pause ends after
    a whole window that left a core free."""
    return Pause("busy", f"paused: the machine is busy (other processes use {others:.1f} of {cpus} cores); "
                         "[train] pause_when_busy = false trains anyway",
                 lambda: is_busy(usable_cpus(), measure()), every)


class PauseWatch:
    """Asked before each step: is a pause due? The battery every `Timing.power_check`, the load once per
    thread governor window (the reading that also sets torch's threads)."""

    def __init__(self, config: RunConfig, threads: ThreadGovernor):
        self.config, self.threads = config, threads
        self._power_checked = time.monotonic()

    def due(self, others: float | None) -> Pause | None:
        """`others`: the governor's reading when a window just ended (`ThreadGovernor.tick`), else None."""
        if self.config.pause_on_battery and self._power_check_due() and on_battery():
            return battery_pause()
        if self.config.pause_when_busy and others is not None and is_busy(cpus := usable_cpus(), others):
            return busy_pause(cpus, others, self.threads.measure, self.threads.recheck_seconds)
        return None

    def _power_check_due(self) -> bool:
        if time.monotonic() - self._power_checked < Timing.from_env().power_check:
            return False
        self._power_checked = time.monotonic()
        return True
