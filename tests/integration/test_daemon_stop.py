"""`vocabd stop` while the daemon is taking in a long batch of drops: the real detached daemon, the real watcher
and inbox rules, real m4a files decoded by ffmpeg."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from test_daemon import daemon_env, log_events, vocabd
from tiny import wait_until
from vocabd.chain.lock import holder
from vocabd.workspace import init_workspace

PAIRS = 100  # about 0.25 s each: a batch far longer than the stop's wait

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def test_stop_during_a_long_ingest_batch_stops_between_drops(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    clip = tmp_path / "take.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=3", "-ar", "16000",
                    "-c:a", "aac", str(clip)], check=True)
    for i in range(PAIRS):
        shutil.copy(clip, ws.inbox / f"take{i:03d}.m4a")
        (ws.inbox / f"take{i:03d}.txt").write_text(f"take number {i}", encoding="utf-8")
    env = daemon_env(VOCABD_SHUTDOWN_S="1")  # `vocabd stop` waits 16 s
    assert vocabd(ws, "start", env=env).returncode == 0
    try:
        wait_until(lambda: any(e["event"] == "inbox.done" for e in log_events(ws)), "the batch to begin", timeout=60)
        started = time.monotonic()
        stopped = vocabd(ws, "stop", env=env)
        took = time.monotonic() - started
    finally:
        if holder(ws) is not None:
            vocabd(ws, "stop", env=daemon_env(VOCABD_SHUTDOWN_S="60"), timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert took < 8.0, took
    left = [p for p in ws.inbox.iterdir() if p.is_file()]
    handled = list((ws.inbox / "done").iterdir()) + [p for p in (ws.inbox / "rejected").iterdir()
                                                      if not p.name.endswith(".reason.txt")]
    assert left and len(left) + len(handled) == 2 * PAIRS  # the rest waits in the inbox for the next start
    assert any(e["event"] == "inbox.batch_stopped" for e in log_events(ws))
