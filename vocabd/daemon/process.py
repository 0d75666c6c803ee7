"""The daemon: one light process running the inbox watcher and a Huey consumer (worker threads).

It never imports torch; stages that need it run as subprocesses of the pipeline. SIGTERM (launchd,
systemd, `vocabd stop`) and SIGINT both stop gracefully: the watcher stops, the running stage gets
`Timing.shutdown` seconds to finish, and one that does not is marked interrupted and run again by
the next daemon (the chain record keeps it). At start the daemon re-enqueues interrupted work, ingests
what the inbox gathered while it was down, and retrains when there is material newer than the last
chain ("background retraining on login").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from vocabd.child import child_env, vocabd_command
from vocabd.daemon.doctor import queue_message, queue_problem, startup_problems
from vocabd.inbox.drops import handle, remove_torn_copies
from vocabd.chain.lock import DAEMON, DaemonLock, DaemonRunning, holder, lock_path
from vocabd.daemon.material import new_material
from vocabd.chain.queue import ChainQueue
from vocabd.chain.stages import PIPELINE, Pipeline
from vocabd.daemon.watcher import InboxWatcher
from vocabd.errors import VocabdError
from vocabd.chain import record as state
from vocabd.log import configure_logging, get_logger
from vocabd.child.ours import is_ours
from vocabd.timing import Timing
from vocabd.workspace import Workspace

log = get_logger("vocabd.daemon")

CONSOLE_ENV = "VOCABD_LOG_CONSOLE"  # "0" when the daemon's stderr already goes to the log file
MATERIAL_CHECK_S = 1.0
HEAVY = ("torch", "transformers", "peft", "mlx", "onnxruntime")


class Daemon:
    def __init__(self, ws: Workspace, timing: Timing, pipeline: Pipeline = PIPELINE):
        self.ws, self.timing = ws, timing
        self.queue = ChainQueue(ws, timing.retry_delay, pipeline)
        self.watcher = InboxWatcher(ws, self._on_ready, timing)
        self.stop_event = threading.Event()
        self.fatal: str | None = None  # why the daemon stopped itself
        self._problem: str | None = None  # the state problem last logged
        self._last_ingest = self._last_check = float("-inf")
        self.consumer = self.queue.huey.create_consumer(
            workers=1, periodic=False, initial_delay=0.1, backoff=1.5, max_delay=2.0,
            check_worker_health=True, shutdown_timeout=timing.shutdown)

    def run(self) -> None:
        log.info("daemon.start", workspace=str(self.ws.root), pid=os.getpid())
        torn = remove_torn_copies(self.ws)
        if torn:
            log.info("daemon.torn_copies_removed", files=torn)
        self.queue.recover()
        self.consumer.start()
        self._install_signals()  # after consumer.start(), which installs Huey's own (SIGTERM = hard stop)
        self.watcher.start()
        health = time.monotonic()
        while not self.stop_event.wait(self.timing.tick):
            try:
                self._maybe_start_chain()
                self._problem = None
            except VocabdError as e:  # a torn state file: said once, not every tick
                if str(e) != self._problem:
                    log.error("daemon.chain_check_failed", error=str(e))
                    self._problem = str(e)
            except Exception:  # the loop must outlive a pipeline bug
                log.exception("daemon.chain_check_failed")
            if time.monotonic() - health >= self.timing.health:
                self._check_health()
                health = time.monotonic()
        self._shutdown()

    def _check_health(self) -> None:
        """Dead worker threads are replaced (Huey); a stage the queue lost is enqueued again. A queue.db that
        went corrupt stops the daemon (reviving a stage into it would fail forever)."""
        if (problem := queue_problem(self.ws)) is not None:
            self.fatal = queue_message(self.ws, problem)
            log.error("queue.corrupt", error=self.fatal)
            self.stop_event.set()
            return
        try:
            self.consumer.check_worker_health()
            self.queue.revive_lost(grace=max(60.0, self.timing.shutdown))
        except Exception:
            log.exception("daemon.health_check_failed")

    def _install_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("daemon.signal", signal=signal.Signals(signum).name)
        self.stop_event.set()

    def _shutdown(self) -> None:
        log.info("daemon.stopping", wait_s=self.timing.shutdown)
        self.watcher.stop()
        self.consumer.stop(graceful=True)
        if self.queue.mark_interrupted():
            log.info("daemon.stopped", stage_interrupted=True)
            # Stop the stage's helpers and leave at once, before the worker thread can take their
            # death for a stage failure; the chain record re-runs the stage at the next start.
            stop_stage_helpers()
            os._exit(0)
        log.info("daemon.stopped", heavy_modules=heavy_modules())
        if self.fatal:
            raise VocabdError(self.fatal)

    def _on_ready(self, paths: list[Path]) -> None:
        outcomes = handle(self.ws, paths, self.stop_event)
        if any(o.status == "done" for o in outcomes):
            self._last_ingest = time.monotonic()

    def _maybe_start_chain(self) -> None:
        now = time.monotonic()
        if now - self._last_check < MATERIAL_CHECK_S or now - self._last_ingest < self.timing.settle:
            return
        self._last_check = now
        if state.is_live(self.ws) or self.watcher.busy() or not new_material(self.ws):
            return
        try:
            self.queue.start_chain()
        except Exception as e:  # remembered as a start that was refused, so it is not retried every second
            if isinstance(e, VocabdError):
                log.error("chain.not_started", error=str(e))
            else:
                log.exception("chain.not_started")
            state.start_refused(self.ws, str(e))


def heavy_modules() -> list[str]:
    """Which of the libraries that belong in worker processes this process has imported (none, by design)."""
    return sorted(m for m in HEAVY if m in sys.modules)


def stop_stage_helpers() -> None:
    """SIGTERM the running stage's child processes (an evaluation, a synthesizer) so the stage's re-run
    at the next start does not race an orphan. Training runs in its own session and is left alone:
    the chain's poll stage finds it again."""
    try:
        found = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return
    for pid in (int(p) for p in found.stdout.split()):
        try:
            if os.getpgid(pid) == os.getpgrp():
                os.kill(pid, signal.SIGTERM)
                log.info("daemon.stage_helper_stopped", pid=pid)
        except ProcessLookupError:
            pass


def run_foreground(ws: Workspace, timing: Timing | None = None, pipeline: Pipeline = PIPELINE) -> None:
    """`vocabd start --foreground`: hold the lock and run until a signal."""
    timing = timing or Timing.from_env()  # a bad $VOCABD_*_S stops the start before it takes the lock
    console = os.environ.get(CONSOLE_ENV, "1") != "0"
    configure_logging(ws.log_file, console=console)
    with DaemonLock(ws):
        refuse_broken_state(ws)
        Daemon(ws, timing, pipeline).run()


def refuse_broken_state(ws: Workspace) -> None:
    """A corrupt queue.db or a torn state file stops the start with one line saying what to do."""
    problems = startup_problems(ws)
    if problems:
        log.error("daemon.refused", problems=problems)
        raise VocabdError("; ".join(problems))


def spawn_background(ws: Workspace, wait_s: float = 15.0) -> int:
    """`vocabd start`: run the daemon detached, its output appended to the workspace log; returns its pid."""
    current = holder(ws)
    if current is not None:
        raise DaemonRunning(ws, current)
    refuse_broken_state(ws)
    cmd = vocabd_command("start", "--foreground", "--workspace", str(ws.root))
    with open(ws.log_file, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=ws.root,
                                start_new_session=True, env=child_env(**{CONSOLE_ENV: "0"}))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        info = holder(ws)
        if info and info.get("pid") == proc.pid:
            return proc.pid
        if proc.poll() is not None:
            last = _last_line(ws.log_file)
            raise VocabdError(f"the daemon exited at start (code {proc.returncode}): {last} (log: {ws.log_file})")
        time.sleep(0.1)
    raise VocabdError(f"the daemon (pid {proc.pid}) did not take the workspace lock in {wait_s:.0f} s; "
                      f"see {ws.log_file}")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log written"
    return lines[-1][:300] if lines else "no log written"


def stop_daemon(ws: Workspace, timeout: float | None = None) -> dict | None:
    """Send SIGTERM and wait for the lock to be released; returns who was stopped (None: not running)."""
    info = holder(ws)
    if info is None:
        return None
    pid = info.get("pid")
    if info.get("role", DAEMON) != DAEMON:
        raise VocabdError(f"no daemon runs {ws.root}: a foreground run (pid {pid}) holds it; stop that with Ctrl-C "
                          "in its terminal")
    if not isinstance(pid, int):
        raise VocabdError(f"the daemon for {ws.root} is starting up; try again in a moment")
    if not is_ours(pid, lock_path(ws), ["start", "--foreground"]):
        raise VocabdError(f"{lock_path(ws)} names pid {pid}, which is not the vocabd daemon holding that lock; "
                          "nothing was signalled")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return info
    timeout = timeout if timeout is not None else Timing.from_env().shutdown + 15.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if holder(ws) is None:
            return info
        time.sleep(0.1)
    raise VocabdError(f"the daemon (pid {pid}) did not stop within {timeout:.0f} s; see {ws.log_file}")
