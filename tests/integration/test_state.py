"""Trust nothing on disk: the daemon's children, its queue, pids and state files.

Real daemon, real SQLite queue, real files.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time

import pytest

from test_daemon import daemon_env, daemons, drop_jargon, vocabd  # noqa: F401 (fixture)
from tiny import wait_until
from vocabd.chain.lock import holder
from vocabd.log import configure_logging, get_logger
from vocabd.workspace import init_workspace

SHADOWS = ("click", "vocabd", "structlog", "huey", "json")


def plant_shadows(ws) -> None:
    """Modules in the workspace root named like vocabd's imports; importing one leaves a marker file."""
    for name in SHADOWS:
        (ws.root / f"{name}.py").write_text(f"open({str(ws.root / ('IMPORTED-' + name))!r}, 'w').close()\n")


def imported(ws) -> list[str]:
    return sorted(p.name for p in ws.root.glob("IMPORTED-*"))


def test_stage_children_never_import_modules_from_the_workspace(ws, tmp_path, monkeypatch):
    from vocabd.errors import VocabdError
    from vocabd.evaluation.runner import _run_evaluate
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

    from vocabd.chain.queue import open_huey

    huey = open_huey(ws)
    row = pickle.dumps(Exploit(ws.root / "PWNED"))
    huey.storage.sql("insert into task (queue, data, priority) values (?, ?, 0)", ("vocabd", row), commit=True)
    huey.storage.sql("insert into schedule (queue, data, timestamp) values (?, ?, 0)", ("vocabd", row), commit=True)
    huey.storage.close()


def test_a_crafted_pickle_row_in_the_queue_never_runs(ws, daemons):
    from daemon_pipeline import PIPELINE
    from vocabd.chain.queue import ChainQueue

    plant_pickle_rows(ws)
    assert ChainQueue(ws, 0.2, PIPELINE).queued_tokens() == set()  # read, refused, skipped
    assert vocabd(ws, "status").returncode == 0
    daemon = daemons(ws)
    wait_until(lambda: "dropped, never executed" in ws.log_file.read_text(), what="the daemon to drop the row")
    drop_jargon(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="a chain through the same queue")
    assert not (ws.root / "PWNED").exists() and daemon.proc.poll() is None
    dropped = [json.loads(line) for line in ws.log_file.read_text().splitlines() if "never executed" in line]
    assert "BadQueueRow" in dropped[0]["exception"]


# --- pids from workspace files -----------------------------------------------------------

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
    from vocabd.chain import record as state

    state.new_chain(ws, "adapt-old", state.Material(jargon=True))
    state.update(ws, "adapt-old", **fields)


def test_a_planted_pid_is_never_signalled(ws):
    from vocabd.chain import stages as pipeline

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
    from vocabd.chain import stages as pipeline
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
    from vocabd.chain.lock import lock_path

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


# --- a corrupt queue.db -----------------------------------------------------------------

def plant_live_chain(ws, stage: str = "mix") -> None:
    """The chain record names chain1's `stage` as queued (the daemon_pipeline runs any chain name)."""
    from vocabd.chain import record as state

    state.new_chain(ws, "chain1", state.Material(jargon=True))
    state.set_queued(ws, "chain1", "mini", stage)


def truncated_queue(ws) -> None:
    from vocabd.chain.queue import open_huey

    huey = open_huey(ws)
    for i in range(300):
        huey.storage.enqueue(json.dumps({"pad": "x" * 200, "i": i}).encode())
    huey.storage.close()
    size = ws.queue_db.stat().st_size
    with open(ws.queue_db, "r+b") as f:
        f.truncate(size // 2)


def garbage_queue(ws) -> None:
    ws.queue_db.write_bytes(b"this is not a database\n" * 400)


@pytest.mark.parametrize("corrupt", [garbage_queue, truncated_queue])
def test_a_corrupt_queue_is_reported_in_one_line_and_rebuilt_from_the_chain_record(ws, daemons, corrupt):
    plant_live_chain(ws)
    corrupt(ws)
    status = vocabd(ws, "status")
    assert status.returncode == 0 and "Traceback" not in status.stdout + status.stderr
    [line] = [line for line in status.stdout.splitlines() if line.startswith("queue")]
    assert "queue.db is corrupt" in line and "vocabd doctor --repair" in line
    for how in ("start", "start --foreground"):
        refused = vocabd(ws, *how.split())
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "queue.db is corrupt" in refused.stderr and "vocabd doctor --repair" in refused.stderr
    checked = vocabd(ws, "doctor")
    assert checked.returncode == 1 and "chain.json        ok" in checked.stdout
    repaired = vocabd(ws, "doctor", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "rebuilt with chain1 mini/mix queued again" in repaired.stdout
    assert list(ws.root.glob("queue.db.corrupt-*"))  # set aside, not deleted
    assert vocabd(ws, "doctor").returncode == 0
    daemons(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="the chain to finish from the rebuilt queue")


def test_a_queue_that_goes_corrupt_under_the_daemon_stops_it_with_what_to_do(ws, daemons):
    daemon = daemons(ws, VOCABD_HEALTH_S="3")
    wait_until(lambda: ws.log_file.exists() and "watcher.start" in ws.log_file.read_text(), what="the daemon")
    with open(ws.queue_db, "r+b") as f:  # overwrite the SQLite header in place
        f.write(b"\0" * 100)
    queued = vocabd(ws, "run")  # queueing a chain for it is refused in one line too
    assert queued.returncode == 1 and "queue.db is corrupt" in queued.stderr and "Traceback" not in queued.stderr
    assert daemon.proc.wait(timeout=20) == 1
    corrupt = [json.loads(line) for line in ws.log_file.read_text().splitlines() if "queue.corrupt" in line]
    assert corrupt and "vocabd doctor --repair" in corrupt[0]["error"]


# --- torn or malformed state files -------------------------------------------------------

def test_a_torn_chain_record_is_reported_never_read_as_a_finished_chain(ws, daemons):
    from daemon_pipeline import PIPELINE
    from vocabd.chain import record as state
    from vocabd.chain.queue import ChainQueue
    from vocabd.chain.stages import run_stage

    plant_live_chain(ws, stage="train")
    token = state.current(ws).token
    whole = state.chain_path(ws).read_text()
    state.chain_path(ws).write_text(whole[: len(whole) // 2])  # torn mid-write by hand or a full disk
    with pytest.raises(state.StateCorrupt, match="chain.json is unreadable"):
        run_stage(ws, "chain1", "mini", "train")
    ChainQueue(ws, 0.2, PIPELINE).execute("chain1", "mini", "train", token, 1)  # the Huey task
    assert state.chain_path(ws).read_text() == whole[: len(whole) // 2]  # nothing marked done
    assert not (ws.root / "stages.log").exists()  # and no stage ran
    status = vocabd(ws, "status")
    assert status.returncode == 0 and "Traceback" not in status.stdout + status.stderr
    assert "chain      " + str(state.chain_path(ws)) + " is unreadable" in status.stdout
    refused = vocabd(ws, "start")
    assert refused.returncode == 1 and "chain.json is unreadable" in refused.stderr
    repaired = vocabd(ws, "doctor", "--repair")
    assert repaired.returncode == 0 and "chain.json: set aside as chain.json.corrupt-" in repaired.stdout


@pytest.mark.parametrize("text", ['[]', '{"chain": {"name": 7}}', '{"chain": {"name": "c", "state": "bogus"}}',
                                  '{"chain": {"name": "c", "timings": []}}', '{"failures": {}}'])
def test_a_chain_record_of_the_wrong_shape_is_refused(ws, text):
    from vocabd.chain import record as state

    state.chain_path(ws).write_text(text)
    with pytest.raises(state.StateCorrupt, match="vocabd doctor"):
        state.read_record(ws)


@pytest.mark.parametrize("text", ['[1, 2]', '{"seq": "three", "items": []}', '{"seq": 1, "items": {"a": 1}}',
                                  '{"seq": 1, "items": [{"kind": "jargon"}]}', '{"seq": 1, "items": [{'])
def test_an_inbox_ledger_of_the_wrong_shape_is_reported_by_status_without_a_traceback(ws, text):
    (ws.data / "inbox_state.json").write_text(text)
    status = vocabd(ws, "status")
    assert status.returncode == 0 and "Traceback" not in status.stdout + status.stderr
    [line] = [line for line in status.stdout.splitlines() if line.startswith("inbox")]
    assert "inbox_state.json" in line and "vocabd doctor" in line
    assert vocabd(ws, "doctor").returncode == 1
    assert "inbox_state.json: set aside" in vocabd(ws, "doctor", "--repair").stdout
    assert vocabd(ws, "status").stdout.count("Traceback") == 0 and vocabd(ws, "doctor").returncode == 0


# --- a foreground run holds the workspace ----------------------------------------

def test_status_names_the_foreground_run_and_its_running_stage(tmp_path, tiny_model):
    from tiny import tiny_workspace_config
    from vocabd.chain import record as state

    root = tmp_path / "ws"
    root.mkdir()
    (root / "vocabd.toml").write_text(tiny_workspace_config(tiny_model))
    ws = init_workspace(root)
    (ws.data / "jargon.txt").write_text("kubectl | cube control\n")
    env = daemon_env(VOCABD_POLL_SECONDS="0.3")
    run = subprocess.Popen([sys.executable, "-m", "vocabd", "run", "--foreground", "-w", str(ws.root)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (state.current(ws) or state.Chain("-")).stage in ("train", "poll"), timeout=120,
                   what="training")
        status = json.loads(vocabd(ws, "status", "--json", env=env).stdout)
        assert status["daemon"]["running"] is False
        assert status["daemon"]["role"] == "foreground run" and status["daemon"]["pid"] == run.pid
        text = vocabd(ws, "status", env=env).stdout
        assert f"daemon     down; a foreground run (pid {run.pid}" in text
        [line] = [line for line in text.splitlines() if line.startswith("chain")]
        assert ": running" in line and "queued" not in line
        for verb in ("start", "run"):
            refused = vocabd(ws, verb, env=env)
            assert refused.returncode == 1 and f"a foreground run (pid {run.pid}" in refused.stderr
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(timeout=30)
    assert holder(ws) is None and state.current(ws).live  # continued by the next run or daemon


# --- worker processes: a request in, a result out -------------------

def test_an_evaluation_worker_reports_its_own_error_not_a_stderr_tail(ws):
    from vocabd.errors import VocabdError
    from vocabd.evaluation.runner import _run_evaluate

    manifest = ws.data / "empty_eval.jsonl"
    manifest.write_text(json.dumps({"audio": "missing.wav", "text": "hello"}) + "\n")
    with pytest.raises(VocabdError) as caught:
        _run_evaluate(ws, manifest, None)
    message = str(caught.value)
    assert message.startswith(f"evaluation of {manifest} (adapter none) failed: {manifest}: no usable clips")
    assert "Traceback" not in message and "missing.wav" in message


def test_the_voice_sample_is_transcribed_in_a_worker_process(tiny_model):
    code = ("import sys, numpy as np; from vocabd.tts.f5_mlx import transcriber; "
            f"text = transcriber({str(tiny_model)!r})(np.zeros(16000, dtype=np.float32)); "
            "print(repr(text), sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("'") and out.stdout.strip().endswith("[]")  # text back, torch in the worker


def test_the_chain_record_is_changed_in_turn_across_processes(ws):
    """`vocabd run` (another process) and the daemon's threads change the record under one flock."""
    from vocabd.chain import record as state

    code = ("import sys; from vocabd.workspace import open_workspace; from vocabd.chain import record as state\n"
            "ws = open_workspace(__import__('pathlib').Path(sys.argv[1]))\n"
            "for _ in range(40):\n"
            "    with state.editing(ws) as record:\n"
            "        record.considered_seq += 1\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(ws.root)]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert state.read_record(ws).considered_seq == 120  # no change lost


def test_one_json_reader_one_policy_for_a_torn_file(tmp_path):
    """Absent is None; torn, unreadable or not an object is an error naming the file, wherever it is read."""
    from vocabd.inbox.ledger import read_state
    from vocabd.errors import VocabdError, WorkspaceError
    from vocabd.files import CorruptFile, read_json
    from vocabd.training.run_folder import RunFolder
    from vocabd.training.status import load_status
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    assert read_json(tmp_path / "absent.json") is None and load_status(ws.run_dir("r")) is None
    (ws.run_dir("r") / "best").mkdir(parents=True)
    for torn in (ws.run_dir("r") / "status.json", ws.run_dir("r") / "best" / "best.json", ws.data / "inbox_state.json"):
        torn.write_text('{"state": "runn')
    for text in ('{"state": "runn', "[1, 2]", "\xff"):
        (tmp_path / "x.json").write_bytes(text.encode("latin-1"))
        with pytest.raises(CorruptFile, match="x.json"):
            read_json(tmp_path / "x.json")
    with pytest.raises(CorruptFile, match="status.json is unreadable"):
        load_status(ws.run_dir("r"))
    with pytest.raises(CorruptFile, match="best.json is unreadable"):
        RunFolder(ws.run_dir("r")).best_info()
    with pytest.raises(WorkspaceError, match="inbox_state.json is unreadable .*vocabd doctor"):
        read_state(ws)
    assert issubclass(CorruptFile, VocabdError)


def test_one_jsonl_reader_skips_only_a_line_cut_short(tmp_path):
    from vocabd.files import read_jsonl

    path = tmp_path / "log.jsonl"
    assert read_jsonl(path) == []
    path.write_text('{"step": 1}\n[2]\n{"step": 3}\n{"step": 4, "lo')
    assert read_jsonl(path) == [{"step": 1}, {"step": 3}]
