"""The daemon as a user runs it: `python -m vocabd start --foreground -w WS` in a subprocess, with the real
SqliteHuey queue, consumer and watchdog observer. Stages come from `daemon_pipeline.py` (a small real
Pipeline that logs each stage, handed to the CLI by `daemon_runner.py`) so a whole two-phase chain takes
seconds; the last tests run the real pipeline to check the daemon process never loads torch.
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny import tiny_workspace_config, wait_until
from vocabd.chain.lock import holder
from vocabd.chain.queue import open_huey
from vocabd.daemon.service import check_location, install_agent, plan_agent, uninstall_agent
from vocabd.errors import VocabdError
from vocabd.chain import record as state
from vocabd.workspace import init_workspace

TESTS = Path(__file__).resolve().parents[1]  # daemon_runner.py, daemon_pipeline.py
ROOT = TESTS.parent
STAGES = ("synthesize", "mix", "train", "poll", "evaluate")
FULL_CHAIN = [f"chain1 {phase} {stage} {edge}" for phase in ("mini", "full") for stage in STAGES
              for edge in ("begin", "end")]


def daemon_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
           "VOCABD_DEBOUNCE_S": "0.3", "VOCABD_PAIR_WAIT_S": "0.6", "VOCABD_SETTLE_S": "0.3", "VOCABD_TICK_S": "0.1",
           "VOCABD_RETRY_DELAY_S": "0.2", "VOCABD_SHUTDOWN_S": "5", "VOCABD_LOG_CONSOLE": "0"}
    env.pop("VOCABD_HOME", None)
    return {**env, **extra}


def vocabd(ws, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI with the logging pipeline (`vocabd run` queues its chains)."""
    return subprocess.run([sys.executable, "-m", "daemon_runner", *args, "-w", str(ws.root)], capture_output=True,
                          text=True, env=env or daemon_env(), timeout=timeout)


class Daemon:
    def __init__(self, ws, real: bool = False, **env: str):
        """`vocabd start --foreground` with the logging pipeline, or with the real one when `real`."""
        self.ws = ws
        program = "vocabd" if real else "daemon_runner"
        self.proc = subprocess.Popen([sys.executable, "-m", program, "start", "--foreground", "-w", str(ws.root)],
                                     env=daemon_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        wait_until(lambda: (holder(ws) or {}).get("pid") == self.proc.pid or self.proc.poll() is not None,
                   what="the daemon to take its lock")
        assert self.proc.poll() is None, self.proc.stdout.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(ws, real: bool = False, **env) -> Daemon:
        started.append(Daemon(ws, real, **env))
        return started[-1]

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def stages(ws) -> list[str]:
    log = ws.root / "stages.log"
    return log.read_text().splitlines() if log.exists() else []


def stage_events(ws) -> list[str]:
    return [line for line in stages(ws) if not line.endswith(" start")]


def drop_jargon(ws, name: str = "terms.txt", text: str = "PBX | P B X\nkubectl\n") -> None:
    tmp = ws.inbox / f".{name}.part"
    tmp.write_text(text, encoding="utf-8")
    tmp.rename(ws.inbox / name)


def queue_size(ws) -> int:
    huey = open_huey(ws)
    return huey.pending_count() + huey.scheduled_count()


def log_events(ws) -> list[dict]:
    events = []
    for line in ws.log_file.read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def test_jargon_drop_drives_both_phases_and_status_reports_it(ws, daemons):
    daemon = daemons(ws)
    drop_jargon(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="the chain's report")
    assert stage_events(ws) == FULL_CHAIN
    assert (ws.inbox / "done" / "terms.txt").exists()
    status = json.loads(vocabd(ws, "status", "--json").stdout)
    assert status["daemon"]["running"] and status["daemon"]["pid"] == daemon.proc.pid
    assert status["queue"]["pending"] == status["queue"]["scheduled"] == status["queue"]["failed"] == 0
    assert status["chain"]["state"] == "done" and status["chain"]["name"] == "chain1"
    assert status["inbox"] == {"waiting": [], "not_trained": [], "rejected": []}
    assert daemon.stop() == 0
    text = vocabd(ws, "status").stdout
    assert "daemon     down" in text and "chain1 / full / evaluate: done" in text
    assert not (ws.data / "daemon_state.json").exists()  # one record: data/chain.json
    events = {e["event"] for e in log_events(ws)}
    assert {"daemon.start", "inbox.done", "chain.start", "chain.done", "daemon.stopped"} <= events


def test_second_daemon_is_refused_and_names_the_holder(ws, daemons):
    first = daemons(ws)
    second = vocabd(ws, "start", "--foreground")
    assert second.returncode == 1
    assert f"already running for {ws.root} (pid {first.proc.pid}" in second.stderr
    detached = vocabd(ws, "start")
    assert detached.returncode == 1 and f"pid {first.proc.pid}" in detached.stderr
    assert first.proc.poll() is None


def test_phase1_failure_stops_the_chain_and_enqueues_nothing(ws, daemons):
    (ws.root / "fail_mini_train").touch()
    daemons(ws)
    drop_jargon(ws)
    wait_until(lambda: (ws.runs / "chain1_mini" / "FAILED.md").exists(), what="FAILED.md")
    wait_until(lambda: state.current(ws).state == "failed", what="the chain record to say failed")
    time.sleep(1.5)
    assert stage_events(ws)[-1] == "chain1 mini train failed"
    assert not any(" full " in line or "poll" in line for line in stages(ws))
    assert queue_size(ws) == 0
    status = json.loads(vocabd(ws, "status", "--json").stdout)
    assert status["queue"]["failed"] == 1 and status["queue"]["last_failure"]["stage"] == "train"


def test_transient_errors_are_retried(ws, daemons):
    (ws.root / "transient_mix").write_text("2")
    daemons(ws)
    drop_jargon(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="the chain's report")
    assert stages(ws).count("chain1 mini mix transient") == 2
    assert [e for e in stage_events(ws) if "transient" not in e] == [
        line for line in FULL_CHAIN for _ in range(3 if line == "chain1 mini mix begin" else 1)]


def test_kill_9_mid_stage_then_restart_finishes_the_chain(ws, daemons):
    (ws.root / "slow_train").write_text("60")
    first = daemons(ws)
    drop_jargon(ws)
    wait_until(lambda: "chain1 mini train begin" in stages(ws), what="training to start")
    first.stop(signal.SIGKILL)
    assert holder(ws) is None  # the kernel released the lock
    assert queue_size(ws) == 0  # Huey had taken the task: only the chain record remembers it
    daemons(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="the restarted chain's report")
    assert stages(ws).count("chain1 mini train begin") == 2
    assert stages(ws).count("chain1 start") == 1  # continued, not restarted
    assert [e for e in stage_events(ws)] == [
        line for line in FULL_CHAIN for _ in range(2 if line == "chain1 mini train begin" else 1)]


def test_sigterm_waits_for_a_short_stage_and_the_next_is_kept(ws, daemons):
    (ws.root / "slow_mix").write_text("1.5")
    first = daemons(ws, VOCABD_SHUTDOWN_S="10")
    drop_jargon(ws)
    wait_until(lambda: "chain1 mini mix begin" in stages(ws), what="mix to start")
    assert first.stop(signal.SIGTERM) == 0
    assert stage_events(ws)[-1] == "chain1 mini mix end"  # finished, not cut off
    assert state.current(ws).stage == "train" and state.current(ws).state == "queued"
    daemons(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="the chain's report")
    assert stage_events(ws) == FULL_CHAIN


def test_sigterm_leaves_a_long_stage_to_the_next_start(ws, daemons):
    (ws.root / "slow_synthesize").write_text("child:60")
    first = daemons(ws, VOCABD_SHUTDOWN_S="0.5")
    drop_jargon(ws)
    wait_until(lambda: "chain1 mini synthesize begin" in stages(ws), what="synthesis to start")
    started = time.monotonic()
    assert first.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 10
    assert state.current(ws).state == "interrupted"
    child = int((ws.root / "child.pid").read_text())
    wait_until(lambda: not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2],
               timeout=5, what="the stage's child process to be stopped")
    daemons(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="the chain's report")
    assert stages(ws).count("chain1 mini synthesize begin") == 2


def test_material_dropped_while_down_is_trained_at_the_next_start(ws, daemons):
    first = daemons(ws)
    drop_jargon(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="chain 1")
    first.stop()
    again = daemons(ws)
    time.sleep(1.5)
    assert not (ws.root / "chain-2.started").exists()  # nothing new: no retraining
    again.stop()
    drop_jargon(ws, "more.txt", "ops@acme.io\n")
    status = json.loads(vocabd(ws, "status", "--json").stdout)
    assert status["inbox"]["waiting"] == ["more.txt"]
    daemons(ws)
    wait_until(lambda: (ws.root / "chain2.report").exists(), what="chain 2")
    assert "ops@acme.io" in (ws.root / "chain-2.started").read_text()


def test_duplicates_and_bad_input_through_the_daemon(ws, daemons):
    daemons(ws)
    drop_jargon(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="chain 1")
    drop_jargon(ws, "copy.txt")  # same bytes under another name
    (ws.inbox / "broken.wav").write_bytes(b"RIFF....not audio")
    (ws.inbox / "slides.pdf").write_bytes(b"%PDF-1.7")
    rejected = ws.inbox / "rejected"
    wait_until(lambda: len(list(rejected.glob("*.reason.txt"))) == 3 if rejected.is_dir() else False,
               what="three rejections")
    assert "same content as terms.txt" in (rejected / "copy.txt.reason.txt").read_text()
    assert "broken.wav" in (rejected / "broken.wav.reason.txt").read_text()
    assert "unsupported file type .pdf" in (rejected / "slides.pdf.reason.txt").read_text()
    time.sleep(1.0)
    assert not (ws.root / "chain-2.started").exists()


def test_detached_start_then_stop(ws):
    started = vocabd(ws, "start")
    assert started.returncode == 0, started.stderr
    pid = holder(ws)["pid"]
    assert f"pid {pid}" in started.stdout
    assert json.loads(vocabd(ws, "status", "--json").stdout)["daemon"]["running"]
    stopped = vocabd(ws, "stop")
    assert stopped.returncode == 0 and f"stopped (pid {pid})" in stopped.stdout
    assert holder(ws) is None
    assert "no daemon running" in vocabd(ws, "stop").stdout
    assert {"daemon.start", "daemon.stopped"} <= {e["event"] for e in log_events(ws)}


def test_the_daemon_process_never_loads_torch(ws):
    """The real pipeline module, an idle real daemon: no torch in its memory map or its modules."""
    env = daemon_env()
    proc = subprocess.Popen([sys.executable, "-m", "vocabd", "start", "--foreground", "-w", str(ws.root)], env=env)
    try:
        wait_until(lambda: (holder(ws) or {}).get("pid") == proc.pid, what="the daemon")
        time.sleep(1.0)
        maps = Path(f"/proc/{proc.pid}/maps")
        if maps.exists():
            assert "torch" not in maps.read_text()
        status = vocabd(ws, "status", "--json", env=env)
        assert status.returncode == 0 and "error" not in json.loads(status.stdout)["chain"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    code = ("import sys, vocabd.cli, vocabd.daemon.process, vocabd.daemon.status, vocabd.daemon.service, "
            "vocabd.chain.stages; print(sorted(m for m in ('torch', 'transformers', 'peft', 'mlx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


# --- login agent ----------------------------------------------------------------------------------

def test_launchd_plist_runs_the_daemon_in_the_foreground(ws, tmp_path):
    plan = plan_agent(ws, platform="darwin", home=tmp_path / "home")
    plist = plistlib.loads(plan.content.encode())
    assert plist["Label"] == "com.vocabd.agent"
    assert plist["ProgramArguments"][1:] == ["-P", "-m", "vocabd", "start", "--foreground", "--workspace", str(ws.root)]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["ProcessType"] == "Background" and plist["StandardErrorPath"] == str(ws.log_file)
    assert plan.path == tmp_path / "home" / "Library" / "LaunchAgents" / "com.vocabd.agent.plist"
    assert [c[:2] for c in plan.install] == [["launchctl", "bootout"], ["launchctl", "bootstrap"]]


@pytest.mark.parametrize("folder", ["Documents", "Desktop", "Downloads"])
def test_agent_refuses_tcc_protected_workspaces_on_macos(tmp_path, folder):
    home = tmp_path / "home"
    ws = init_workspace(home / folder / "vocabd")
    with pytest.raises(VocabdError, match=f"~/{folder}"):
        plan_agent(ws, platform="darwin", home=home)
    check_location(ws.root, home, "linux")  # no TCC on Linux


def test_systemd_unit_install_and_uninstall(ws, tmp_path):
    home = tmp_path / "home"
    plan = plan_agent(ws, platform="linux", home=home, env={"PATH": "/usr/bin"})
    assert plan.path == home / ".config" / "systemd" / "user" / "vocabd.service"
    assert f'ExecStart="{sys.executable}" -P -m vocabd start --foreground --workspace "{ws.root}"' in plan.content
    for line in ("Type=exec", "KillSignal=SIGINT", "Restart=on-failure", "WantedBy=default.target"):
        assert line in plan.content
    assert re.search(r"\{\{[A-Z_]+\}\}", plan.content) is None  # every field filled
    assert plan.install[-1] == ["systemctl", "--user", "enable", "--now", "vocabd.service"]
    dry = install_agent(plan, dry_run=True)
    assert not plan.path.exists() and dry[0] == f"would write {plan.path}"
    plan.install, plan.uninstall = [], []  # leave this machine's own systemd alone
    install_agent(plan)
    assert plan.path.read_text() == plan.content
    if shutil.which("systemd-analyze"):  # systemd's own check of every directive
        check = subprocess.run(["systemd-analyze", "verify", "--man=no", str(plan.path)], capture_output=True,
                               text=True, timeout=60)
        assert check.returncode == 0 and check.stderr.strip() == "", check.stderr
    uninstall_agent(plan)
    assert not plan.path.exists()


def test_agent_install_dry_run_from_the_cli(ws):
    out = vocabd(ws, "agent", "install", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "--foreground" in out.stdout and "would write" in out.stdout


def test_a_voice_sample_alone_starts_no_chain_until_there_is_something_to_train_on(ws, daemons):
    import numpy as np

    from vocabd.audio import write_wav

    daemon = daemons(ws)
    t = np.arange(3 * 16000) / 16000
    write_wav(ws.root / "me.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32))
    (ws.root / "me.wav").rename(ws.inbox / "me.wav")
    wait_until(lambda: (ws.data / "voice_ref.wav").exists(), what="the voice sample")
    wait_until(lambda: "nothing to train on" in (state.read_record(ws).refused or ""), what="the refused start")
    assert "nothing to train on" in ws.log_file.read_text()
    drop_jargon(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="chain 1")
    assert daemon.proc.poll() is None


def test_vocabd_run_queues_a_chain_for_the_running_daemon(ws, daemons):
    daemons(ws)
    drop_jargon(ws)
    wait_until(lambda: (ws.root / "chain1.report").exists(), what="chain 1")
    queued = vocabd(ws, "run")
    assert queued.returncode == 0, queued.stderr
    wait_until(lambda: (ws.root / "chain2.report").exists(), what="chain 2, queued from another process")
    foreground = vocabd(ws, "run", "--foreground")
    assert foreground.returncode == 1 and "vocabd stop" in foreground.stderr


# --- the real pipeline with a tiny model ----------------------------------------------------------

def test_kill_9_mid_training_with_the_real_pipeline_then_restart_finishes(tmp_path, tiny_model, daemons):
    from vocabd.chain.status import chain_state

    root = tmp_path / "ws"
    root.mkdir()
    (root / "vocabd.toml").write_text(tiny_workspace_config(tiny_model))
    ws = init_workspace(root)
    first = daemons(ws, real=True, VOCABD_POLL_SECONDS="0.3")
    drop_jargon(ws, text="kubectl | cube control\nops@acme.io\n")
    wait_until(lambda: chain_state(ws)["stage"] == "poll", timeout=120, what="phase 1 training")
    first.stop(signal.SIGKILL)
    assert state.is_live(ws)
    second = daemons(ws, real=True, VOCABD_POLL_SECONDS="0.3")
    wait_until(lambda: chain_state(ws)["state"] in ("done", "failed"), timeout=240, what="the chain's end")
    final = chain_state(ws)
    assert final["state"] == "done", final
    # having run every real stage (synthesis, training launch, polls, evaluations): nothing heavy in the daemon
    maps = Path(f"/proc/{second.proc.pid}/maps")
    if maps.exists():
        assert not [lib for lib in ("torch", "mlx", "onnxruntime") if lib in maps.read_text()]
    assert second.stop() == 0
    stopped = [e for e in log_events(ws) if e["event"] == "daemon.stopped"]
    assert stopped[-1]["heavy_modules"] == []
    for experiment in (f"{final['name']}_mini", final["name"]):
        assert (ws.run_dir(experiment) / "report.md").is_file()
    assert state.current(ws).state == "done" and queue_size(ws) == 0
    events = [e["event"] for e in log_events(ws)]
    assert events.count("daemon.start") == 2 and events.count("chain.start") == 1


def test_detached_start_that_fails_says_why(ws):
    failed = vocabd(ws, "start", env=daemon_env(VOCABD_TICK_S="soon"))
    assert failed.returncode == 1
    assert "exited at start" in failed.stderr and "$VOCABD_TICK_S must be a number of seconds" in failed.stderr
    assert holder(ws) is None


def test_a_stage_the_queue_lost_is_enqueued_again(ws):
    """The chain record names a queued stage that never reached SQLite (a failed enqueue): revive_lost re-enqueues it."""
    from daemon_pipeline import PIPELINE
    from vocabd.chain.queue import ChainQueue

    queue = ChainQueue(ws, 0.2, PIPELINE)
    state.new_chain(ws, "c1", state.Material(jargon=True))
    token = state.set_queued(ws, "c1", "mini", "mix", attempt=1, delay=0.0)
    assert queue.counts() == {"pending": 0, "scheduled": 0}
    assert not queue.revive_lost(grace=60.0)  # not overdue yet
    assert queue.revive_lost(grace=0.0)
    [task] = queue.huey.pending()
    assert task.args[:3] == ("c1", "mini", "mix") and task.args[3] != token
    assert not queue.revive_lost(grace=0.0)  # now it is in the queue
