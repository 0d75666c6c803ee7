"""Trust nothing on disk (issue 9, items 2-4 and 12-14): the daemon's children, its queue, pids and state files.

Real daemon, real SQLite queue, real files.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest

from test_daemon import daemon_env, daemons, drop_jargon, vocabd, wait_until  # noqa: F401 (fixture)
from vocabd.daemon.lock import holder
from vocabd.log import configure_logging, get_logger
from vocabd.workspace import init_workspace

SHADOWS = ("click", "vocabd", "structlog", "huey", "json")


@pytest.fixture
def ws(tmp_path):
    return init_workspace(tmp_path / "ws")


def plant_shadows(ws) -> None:
    """Modules in the workspace root named like vocabd's imports; importing one leaves a marker file."""
    for name in SHADOWS:
        (ws.root / f"{name}.py").write_text(f"open({str(ws.root / ('IMPORTED-' + name))!r}, 'w').close()\n")


def imported(ws) -> list[str]:
    return sorted(p.name for p in ws.root.glob("IMPORTED-*"))


def test_stage_children_never_import_modules_from_the_workspace(ws, tmp_path, monkeypatch):
    from vocabd.errors import VocabdError
    from vocabd.jobs.evaluate import _run_evaluate
    from vocabd.training.launch import spawn_trainer
    from vocabd.training.run_folder import RunFolder

    plant_shadows(ws)
    started = vocabd(ws, "start")  # the detached daemon runs in the workspace folder
    assert started.returncode == 0, started.stderr
    assert vocabd(ws, "stop").returncode == 0
    monkeypatch.chdir(ws.root)  # a stage runs with the daemon's current folder: the workspace
    pid = spawn_trainer(RunFolder(ws.run_dir("shadowed")))  # no config.json: refused at once
    wait_until(lambda: "error" in (ws.run_dir("shadowed") / "stdout.log").read_text(), what="the trainer to end")
    with pytest.raises(VocabdError, match="evaluation of"):
        _run_evaluate(ws, ws.root / "missing.jsonl", None)
    assert pid > 0 and imported(ws) == []


def test_log_exception_keeps_the_traceback_in_the_log_file(tmp_path):
    log_file = tmp_path / "vocabd.log"
    configure_logging(log_file, console=False)
    try:
        try:
            {}["missing"]
        except KeyError:
            get_logger("vocabd.test").exception("stage.crashed", stage="mix")
            logging.getLogger("huey").exception("Error reading from queue")  # a library's own logger
    finally:
        configure_logging(console=False)
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [e["event"] for e in events] == ["stage.crashed", "Error reading from queue"]
    for event in events:
        assert "Traceback (most recent call last)" in event["exception"] and "KeyError: 'missing'" in event["exception"]


class Exploit:
    """Unpickling this runs a shell command: what a crafted queue.db row would do to a pickle queue."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def plant_pickle_rows(ws) -> None:
    import pickle

    from vocabd.daemon.queue import open_huey

    huey = open_huey(ws)
    row = pickle.dumps(Exploit(ws.root / "PWNED"))
    huey.storage.sql("insert into task (queue, data, priority) values (?, ?, 0)", ("vocabd", row), commit=True)
    huey.storage.sql("insert into schedule (queue, data, timestamp) values (?, ?, 0)", ("vocabd", row), commit=True)
    huey.storage.close()


def test_a_crafted_pickle_row_in_the_queue_never_runs(ws, daemons):
    import daemon_pipeline
    from vocabd.daemon.queue import ChainQueue
    from vocabd.daemon.timing import Timing

    plant_pickle_rows(ws)
    assert ChainQueue(ws, Timing(), daemon_pipeline).queued_tokens() == set()  # read, refused, skipped
    assert vocabd(ws, "status").returncode == 0
    daemon = daemons(ws)
    wait_until(lambda: "dropped, never executed" in ws.log_file.read_text(), what="the daemon to drop the row")
    drop_jargon(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="a chain through the same queue")
    assert not (ws.root / "PWNED").exists() and daemon.proc.poll() is None
    dropped = [json.loads(line) for line in ws.log_file.read_text().splitlines() if "never executed" in line]
    assert "BadQueueRow" in dropped[0]["exception"]


# --- pids from workspace files (item 4) -----------------------------------------------------------

def fake_trainer(ws, run: str) -> subprocess.Popen:
    """A process that holds the run's lock and carries the chain trainer's command line, like a real one."""
    code = ("import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); time.sleep(300)")
    (ws.run_dir(run)).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", code, str(ws.run_dir(run) / ".lock"), "-m",
                             "vocabd.training.worker", str(ws.run_dir(run))], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def plant_chain(ws, **fields) -> None:
    from vocabd.jobs import state

    state.new_chain(ws, "adapt-old", {"jargon": True})
    state.update_chain(ws, "adapt-old", **fields)


def test_a_planted_pid_is_never_signalled(ws):
    from vocabd.jobs import pipeline

    (ws.data / "jargon.txt").write_text("kubectl\n")
    bystander = subprocess.Popen(["sleep", "300"])
    holder_of_lock = fake_trainer(ws, "adapt-old_mini")  # holds the lock, but is not the pid recorded
    try:
        plant_chain(ws, phase="mini", stage="poll", state="running", train_pid=bystander.pid)
        pipeline.start_chain(ws)  # new material supersedes the old chain
        time.sleep(0.5)
        assert bystander.poll() is None and holder_of_lock.poll() is None
    finally:
        for proc in (bystander, holder_of_lock):
            proc.kill()
            proc.wait()


def test_the_proven_trainer_of_a_superseded_chain_is_stopped(ws):
    from vocabd.jobs import pipeline
    from vocabd.training.status import is_trainer

    (ws.data / "jargon.txt").write_text("kubectl\n")
    trainer = fake_trainer(ws, "adapt-old_mini")
    try:
        assert is_trainer(ws.run_dir("adapt-old_mini"), trainer.pid)
        assert not is_trainer(ws.run_dir("adapt-other"), trainer.pid)
        plant_chain(ws, phase="mini", stage="poll", state="running", train_pid=trainer.pid)
        pipeline.start_chain(ws)
        assert trainer.wait(timeout=10) == -15  # SIGTERM
    finally:
        trainer.kill()


def test_vocabd_stop_signals_only_the_daemon_holding_the_lock(ws, daemons):
    from vocabd.daemon.lock import lock_path

    daemon = daemons(ws)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        info = json.loads(lock_path(ws).read_text())
        lock_path(ws).write_text(json.dumps({**info, "pid": bystander.pid}))  # the lock file's text is data
        refused = vocabd(ws, "stop")
        assert refused.returncode == 1 and "nothing was signalled" in refused.stderr
        assert bystander.poll() is None and daemon.proc.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
