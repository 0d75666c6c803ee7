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
    from vocabd.training.launch import spawn_run

    plant_shadows(ws)
    started = vocabd(ws, "start")  # the detached daemon runs in the workspace folder
    assert started.returncode == 0, started.stderr
    assert vocabd(ws, "stop").returncode == 0
    monkeypatch.chdir(ws.root)  # a stage runs with the daemon's current folder: the workspace
    pid = spawn_run(ws, "shadowed", ["--max-steps", "1", "--eval-interval", "1"])  # no --train: refused at once
    wait_until(lambda: "error" in (ws.run_dir("shadowed") / "stdout.log").read_text(), what="run-experiment to end")
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
