"""`runs/NAME/status.json` and the run lock. Torch-free: the daemon reads run state through this module.

The training process holds an exclusive `flock` on `runs/NAME/.lock` while it lives; the OS drops it
when the process dies (even on kill -9), so "is a run alive?" never depends on a stale pid file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO

from vocabd.errors import VocabdError
from vocabd.files import read_json, write_json
from vocabd.child.ours import is_ours

STATUS_FILE = "status.json"
LOCK_FILE = ".lock"
STATES = ("running", "finished", "failed", "stalled")
TRAINER_MODULE = "vocabd.training.worker"  # the training process: `python -P -m vocabd.training.worker RUN_DIR`


@dataclass
class RunStatus:
    state: str = "running"  # running | finished | failed | stalled (as stored: running | finished | failed)
    step: int = 0
    max_steps: int = 0
    eta_seconds: float | None = None
    pid: int | None = None
    heartbeat: float = 0.0  # unix time of the last sign of life
    started: float = 0.0
    seconds_per_step: float | None = None
    loss: float | None = None
    best_step: int | None = None
    best_dev_wer: float | None = None
    error: str = ""
    reason: str = ""  # why read_status judged the state (e.g. "pid 123 is gone")

    @property
    def done(self) -> bool:
        return self.state in ("finished", "failed")


class RunBusyError(VocabdError):
    pass


def write_status(run_dir: Path, status: RunStatus) -> None:
    write_json(run_dir / STATUS_FILE, asdict(status))


def load_status(run_dir: Path) -> RunStatus | None:
    """status.json as written (no liveness check); None when there is none."""
    data = read_json(Path(run_dir) / STATUS_FILE)
    if data is None:
        return None
    known = {f.name for f in fields(RunStatus)}
    return RunStatus(**{k: v for k, v in data.items() if k in known})


def read_status(run_dir: Path, stall_seconds: float = 600.0, now: float | None = None) -> RunStatus:
    """The run's state as it really is: a 'running' run whose process is gone is failed; one whose
    process lives but has not beaten its heart for `stall_seconds` is stalled."""
    run_dir = Path(run_dir)
    status = load_status(run_dir)
    if status is None:
        raise VocabdError(f"{run_dir}: no such run (no {STATUS_FILE})")
    if status.state != "running":
        return status
    now = time.time() if now is None else now
    if not is_locked(run_dir) and not pid_alive(status.pid):
        status.state = "failed"
        status.reason = f"process {status.pid} ended without finishing (killed or crashed); resume with --resume"
    elif now - status.heartbeat > stall_seconds:
        status.state = "stalled"
        status.reason = f"no heartbeat for {now - status.heartbeat:.0f} s (limit {stall_seconds:.0f} s)"
    return status


def pid_alive(pid: int | None) -> bool:
    """True for a live, non-zombie process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # Linux: a zombie still answers kill(0)
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


def is_trainer(run_dir: Path, pid: object) -> bool:
    """`pid` is this run's training process: it holds the run lock and trains this very run folder."""
    run_dir = Path(run_dir).resolve()
    return is_locked(run_dir) and is_ours(pid, run_dir / LOCK_FILE, ["-m", TRAINER_MODULE, str(run_dir)])


def is_locked(run_dir: Path) -> bool:
    """True while a live process holds the run lock."""
    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return True
            raise
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def acquire_run_lock(run_dir: Path, wait_seconds: float = 2.0) -> IO:
    """Hold the run lock for this process's life; refuse when another live run holds it.

    Retries briefly because `is_locked` (a poller) may hold the lock for a moment.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except OSError:
            if time.monotonic() >= deadline:
                handle.close()
                status = load_status(run_dir)
                pid = status.pid if status else "?"
                raise RunBusyError(f"run {run_dir.name} is already running (pid {pid}) in {run_dir}")
            time.sleep(0.05)
