"""Daemon intervals, overridable with environment variables (tests use short ones)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from vocabd.errors import VocabdError


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise VocabdError(f"${name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise VocabdError(f"${name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True)
class Timing:
    debounce: float = 2.0  # a file counts as complete once its size and mtime held still this long
    pair_wait: float = 5.0  # a lone .txt or audio waits this long for its partner (a transcript, a recording)
    settle: float = 10.0  # quiet time after the last ingested file before a chain starts
    open_hold: float = 600.0  # a file still open for writing is waited for at most this long
    incomplete_hold: float = 60.0  # a WAV/FLAC holding less than its header declares waits at most this long
    rescan: float = 30.0  # full inbox rescan, in case the OS dropped an event
    tick: float = 0.5  # daemon main-loop and debounce check period
    health: float = 10.0  # worker health and queue.db checks
    shutdown: float = 15.0  # graceful stop: wait this long for a running stage before leaving it to restart
    retry_delay: float = 30.0  # first retry of a TransientError; doubles each attempt (the chain gives up
                               # after the stage's max_attempts, vocabd.chain.spec)

    @classmethod
    def from_env(cls) -> "Timing":
        d = cls()
        return cls(
            debounce=_env_float("VOCABD_DEBOUNCE_S", d.debounce),
            pair_wait=_env_float("VOCABD_PAIR_WAIT_S", d.pair_wait),
            settle=_env_float("VOCABD_SETTLE_S", d.settle),
            open_hold=_env_float("VOCABD_OPEN_HOLD_S", d.open_hold),
            incomplete_hold=_env_float("VOCABD_INCOMPLETE_HOLD_S", d.incomplete_hold),
            rescan=_env_float("VOCABD_RESCAN_S", d.rescan),
            tick=max(0.05, _env_float("VOCABD_TICK_S", d.tick)),
            health=max(0.1, _env_float("VOCABD_HEALTH_S", d.health)),
            shutdown=_env_float("VOCABD_SHUTDOWN_S", d.shutdown),
            retry_delay=_env_float("VOCABD_RETRY_DELAY_S", d.retry_delay),
        )
