"""The live line of a running stage: what it says, how it draws on a terminal and in a log."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest

from rich.console import Console

from vocabd.daemon.status import follow_status
from vocabd.chain import record as state
from vocabd.chain.progress import LiveLine, stage_line
from vocabd.training.status import RunStatus, acquire_run_lock, write_status
from vocabd.workspace import init_workspace


@pytest.fixture
def training_ws(tmp_path):
    """A chain in its mini training stage, the run alive (this process holds its lock, as a trainer does)."""
    ws = init_workspace(tmp_path / "ws")
    state.new_chain(ws, "adapt-1", state.Material(jargon=True))
    state.update(ws, "adapt-1", stage="poll", state="running")
    lock = acquire_run_lock(ws.run_dir("adapt-1_mini"))

    def progress(step: int = 12, loss: float | None = 0.8123, best: float | None = 0.231, reason: str = ""):
        now = time.time()
        write_status(ws.run_dir("adapt-1_mini"), RunStatus(
            step=step, max_steps=50, eta_seconds=70.0, pid=os.getpid(), heartbeat=now, started=now - 45, loss=loss,
            best_dev_wer=best, reason=reason))
        return ws

    yield progress
    lock.close()


def test_training_line_has_step_loss_dev_wer_and_eta(training_ws):
    ws = training_ws()
    line = stage_line(ws, state.current(ws).to_dict(), None)
    assert line.startswith("[phase 1 mini] train adapt-1_mini")
    for part in ("step 12/50", "loss 0.812", "best dev WER 0.231", "0:45", "ETA 1:10"):
        assert part in line, line


def test_training_line_before_the_first_step_says_it_is_starting(training_ws):
    ws = training_ws(step=0, loss=None, best=None)
    line = stage_line(ws, state.current(ws).to_dict(), None)
    assert "step 0/50" in line and "starting" in line and "ETA" not in line


def test_a_paused_run_says_why_instead_of_an_eta(training_ws):
    from click.testing import CliRunner

    from vocabd.cli import main

    note = "paused: the machine is busy (other processes use 1.8 of 2 cores); [train] pause_when_busy = false ..."
    ws = training_ws(reason=note)
    line = stage_line(ws, state.current(ws).to_dict(), None)
    assert line.endswith(f"0:45, {note}") and "ETA" not in line, line
    out = CliRunner().invoke(main, ["status", "-w", str(ws.root)], catch_exceptions=False).output
    assert f"progress   step 12 of 50; {note}" in out, out


def test_other_stages_show_their_state_and_elapsed_time(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    chain = {"name": "adapt-1", "phase": "full", "stage": "evaluate", "state": "running"}
    assert stage_line(ws, chain, since=100.0, now=100.0 + 125) == "[phase 2 full] evaluate  running 2:05"


def test_plain_output_prints_changed_lines_periodically_and_the_final_one(tmp_path):
    out = io.StringIO()
    texts = iter(f"step {i}" for i in range(1000))
    with LiveLine(Console(file=out, width=100), lambda: next(texts), every=0.2) as line:
        time.sleep(0.9)
        line.finish("done")
    lines = out.getvalue().splitlines()
    assert 3 <= len(lines) <= 7 and lines[0] == "step 0" and lines[-1] == "done", lines


def test_on_a_terminal_the_line_is_redrawn_and_other_output_goes_above_it(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with LiveLine(console, lambda: "[phase 1 mini] evaluate  running 0:01") as line:
        Console(stderr=True).print("a table printed by the stage")  # another rich Console, as report.py has
        print("a plain print")
        time.sleep(0.7)
        line.finish("[phase 1 mini] evaluate  done in 0:02")
    screen = out.getvalue()
    assert "\x1b[" in screen  # cursor control: redrawn in place
    assert screen.index("a table printed by the stage") < screen.rindex("evaluate  done in 0:02")
    assert screen.index("a plain print") < screen.rindex("evaluate  done in 0:02")
    assert "running 0:01" in screen


def test_status_follow_shows_the_training_line_until_the_chain_ends(training_ws):
    ws = training_ws()

    def finish_later():
        time.sleep(2.5)
        state.update(ws, "adapt-1", stage="evaluate", state="running")
        time.sleep(2.5)
        state.update(ws, "adapt-1", state="done")

    threading.Thread(target=finish_later, daemon=True).start()
    out = io.StringIO()
    code = follow_status(ws, Console(file=out, width=200))
    lines = out.getvalue().splitlines()
    assert code == 0
    assert any(line.startswith("[phase 1 mini] train adapt-1_mini  step 12/50") for line in lines), lines
    assert any(line.startswith("[phase 1 mini] evaluate") for line in lines), lines
    assert lines[-1] == "chain adapt-1 done"
