"""How long vocabd waits for things: every interval in one object, each one overridable with its `VOCABD_*`
environment variable (the tests make them short)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from vocabd.errors import VocabdError


def interval(default: float, env: str, help: str, floor: float = 0.0) -> Any:
    """An interval in seconds: its default, the variable that overrides it, what it is for and its least value."""
    return field(default=default, metadata={"env": env, "help": help, "floor": floor})


@dataclass(frozen=True)
class Timing:
    debounce: float = interval(2.0, "VOCABD_DEBOUNCE_S",
                               "an inbox file counts as complete once its size and mtime held still this long")
    pair_wait: float = interval(5.0, "VOCABD_PAIR_WAIT_S",
                                "a lone .txt or audio file waits this long for its partner (a transcript, a recording)")
    settle: float = interval(10.0, "VOCABD_SETTLE_S", "quiet time after the last ingested file before a chain starts")
    open_hold: float = interval(600.0, "VOCABD_OPEN_HOLD_S",
                                "a file still open for writing is waited for at most this long")
    incomplete_hold: float = interval(60.0, "VOCABD_INCOMPLETE_HOLD_S",
                                      "a WAV/FLAC holding less than its header declares waits at most this long")
    rescan: float = interval(30.0, "VOCABD_RESCAN_S", "full inbox rescan, in case the OS dropped an event")
    tick: float = interval(0.5, "VOCABD_TICK_S", "daemon main-loop and debounce check period", floor=0.05)
    health: float = interval(10.0, "VOCABD_HEALTH_S", "worker health and queue.db checks", floor=0.1)
    shutdown: float = interval(15.0, "VOCABD_SHUTDOWN_S",
                               "graceful stop: wait this long for a running stage before leaving it to run again "
                               "at the next start")
    retry_delay: float = interval(30.0, "VOCABD_RETRY_DELAY_S",
                                  "first re-run of a stage after a transient error; doubles each attempt")
    poll: float = interval(15.0, "VOCABD_POLL_SECONDS", "between the chain's looks at a training run (poll stage)")
    progress: float = interval(30.0, "VOCABD_PROGRESS_S",
                               "between plain progress lines when the output is not a terminal")
    power_check: float = interval(30.0, "VOCABD_POWER_CHECK_S",
                                  "between looks at the battery while training ([train] pause_on_battery)")

    @classmethod
    def from_env(cls) -> "Timing":
        return cls(**{f.name: max(f.metadata["floor"], _env_seconds(f.metadata["env"], f.default))
                      for f in dataclasses.fields(cls)})


def _env_seconds(name: str, default: float) -> float:
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
