"""Good citizenship for torch-heavy workers (the trainer, `vocabd evaluate`): one at a time on this machine,
at background priority, with as many torch threads as there are free cores.

Torch-free at import. Two torch processes on the same cores make each other several times slower (their
OpenMP threads spin against each other), so a second worker waits for the first instead of sharing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from vocabd.log import get_logger

log = get_logger(__name__)

HEAVY_LOCK_ENV = "VOCABD_HEAVY_LOCK"  # another lock file (tests use their own, so they never wait on a real run)
BACKGROUND_NICENESS = 10
THREADS_RECHECK_SECONDS = 60.0
START_SAMPLE_SECONDS = 0.5  # how long a starting worker watches the cores before choosing its thread count
PROC_STAT = Path("/proc/stat")


def heavy_lock_path() -> Path:
    """Per machine (per user): in the user cache folder, shared by every workspace."""
    if os.environ.get(HEAVY_LOCK_ENV):
        return Path(os.environ[HEAVY_LOCK_ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vocabd")) / "heavy.lock"


class HeavyLock:
    """An exclusive flock on the heavy-work lock file; the OS drops it when the holder dies (even kill -9).

    The holder writes "pid what" into the file, so a waiting worker can say whom it waits for.
    """

    def __init__(self, what: str, path: Path | None = None):
        self.what = what
        self.path = Path(path) if path is not None else heavy_lock_path()
        self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            handle.close()
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        handle.truncate(0)
        handle.write(f"{os.getpid()} {self.what}\n")
        handle.flush()
        self._handle = handle
        return True

    def acquire(self, on_wait: Callable[[str], None] | None = None, poll_seconds: float = 1.0) -> None:
        """Block until held; while waiting, log once whom we wait for and call `on_wait(holder)` each poll."""
        said = False
        while not self.try_acquire():
            holder = self.holder()
            if not said:
                log.info("waiting_for_heavy_lock", what=self.what, holder=holder, lock=str(self.path))
                said = True
            if on_wait is not None:
                on_wait(holder)
            time.sleep(poll_seconds)
        if said:
            log.info("heavy_lock_taken", what=self.what)

    def release(self) -> None:
        if self._handle is None:
            return
        self._handle.truncate(0)
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "?"
        except OSError:
            return "?"


@contextmanager
def heavy_worker(what: str, on_wait: Callable[[str], None] | None = None) -> Iterator[HeavyLock]:
    """The set-up every torch-heavy worker runs under: background priority, the heavy lock, torch threads."""
    background_priority()
    lock = HeavyLock(what)
    lock.acquire(on_wait)
    try:
        set_torch_threads(free_cores(usable_cpus(), others_load(START_SAMPLE_SECONDS)))
        yield lock
    finally:
        lock.release()


def background_priority(niceness: int = BACKGROUND_NICENESS) -> None:
    """Raise this process's niceness to at least `niceness` (never lowers it: an already nicer start stays)."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current < niceness:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def free_cores(cpus: int, others: float) -> int:
    """Torch threads for `cpus` usable cores when the other processes use `others` cores' worth: the cores
    they leave free, at least 1, at most `cpus`."""
    return max(1, min(cpus, _left_free(cpus, others)))


def is_busy(cpus: int, others: float) -> bool:
    """The other processes leave none of the `cpus` cores free (`free_cores` would still give torch one)."""
    return _left_free(cpus, others) < 1


def _left_free(cpus: int, others: float) -> int:
    return round(cpus - others)


def busy_cpu_seconds() -> float | None:
    """CPU time all processes have used since boot (Linux's /proc/stat; None elsewhere). Steal time is left
    out: the hypervisor's, not another process's."""
    try:
        fields = PROC_STAT.read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return None
    if fields[:1] != ["cpu"] or len(fields) < 8:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """Cores' worth of CPU the other processes used since the last reading: the machine's busy time
    (/proc/stat) less this process's own; where the OS has no /proc/stat, the 1-minute load average less our
    own share. The load average alone still counts a worker that ended a minute ago, and a chain's trainer
    starts right after one: it would start on one thread."""

    def __init__(self) -> None:
        self._since, self._own, self._busy = time.monotonic(), own_cpu_seconds(), busy_cpu_seconds()

    @property
    def seconds(self) -> float:
        """Since the last reading."""
        return time.monotonic() - self._since

    def others(self) -> float:
        now, own, busy = time.monotonic(), own_cpu_seconds(), busy_cpu_seconds()
        elapsed = max(now - self._since, 1e-3)
        total = os.getloadavg()[0] if busy is None or self._busy is None else (busy - self._busy) / elapsed
        others = max(0.0, total - (own - self._own) / elapsed)
        self._since, self._own, self._busy = now, own, busy
        return others


def others_load(seconds: float) -> float:
    """Cores' worth of CPU the other processes use, watched for `seconds`."""
    meter = LoadMeter()
    time.sleep(seconds)
    return meter.others()


def set_torch_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        log.info("torch_threads", threads=threads, was=torch.get_num_threads())
        torch.set_num_threads(threads)


class ThreadGovernor:
    """Re-chooses the torch thread count once a window from the load the other processes put on the cores."""

    def __init__(self, recheck_seconds: float = THREADS_RECHECK_SECONDS):
        self.recheck_seconds = recheck_seconds
        self._meter = LoadMeter()

    def tick(self) -> float | None:
        """When a window has passed: `measure()`; within one: None."""
        return self.measure() if self._meter.seconds >= self.recheck_seconds else None

    def measure(self) -> float:
        """Cores' worth of CPU the other processes used since the last reading; torch's threads follow it."""
        others = self._meter.others()
        set_torch_threads(free_cores(usable_cpus(), others))
        return others


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
