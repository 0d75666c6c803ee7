"""A full disk and a killed ingest: a real filesystem filled to the last byte (a small tmpfs, mounted when the
tests run as root), the real inbox rules, the real daemon process."""

from __future__ import annotations

import errno
import os
import signal
import subprocess

import numpy as np
import pytest
from structlog.testing import capture_logs

from test_daemon import daemon_env, log_events, vocabd
from tiny import wait_until
from vocabd.audio import write_wav
from vocabd.inbox.drops import handle, inbox_entries
from vocabd.workspace import init_workspace


def speechlike(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.2 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder) -> os.PathLike:
    """Write until the filesystem refuses even one more byte."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    return filler


def test_a_good_drop_on_a_full_disk_stays_in_the_inbox_with_a_logged_reason(small_disk):
    ws = init_workspace(small_disk / "ws")
    write_wav(ws.inbox / "take.wav", speechlike(3.0))
    (ws.inbox / "take.txt").write_text("press the pound key twice", encoding="utf-8")
    filler = fill(small_disk)
    with capture_logs() as logs:
        [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "waiting" and "disk is full" in outcome.message, outcome.message
    assert sorted(p.name for p in inbox_entries(ws)) == ["take.txt", "take.wav"]
    assert not any((ws.inbox / "rejected").iterdir())
    assert not [p for p in ws.data.rglob("*") if p.name.endswith(".part")]
    [event] = [e for e in logs if e["event"] == "inbox.disk_full"]
    assert event["files"] == ["take.wav", "take.txt"] and "No space left" in event["error"]
    filler.unlink()  # space again: the same drop goes in
    [outcome] = handle(ws, inbox_entries(ws))
    assert outcome.status == "done", outcome.message


def test_torn_copies_a_killed_ingest_left_are_removed_at_start(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    recordings = ws.data / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    torn = [recordings / ".vocabd-0123456789ab.part", recordings / "long" / ".vocabd-ba9876543210.part"]
    torn[1].parent.mkdir(exist_ok=True)
    for path in torn:
        path.write_bytes(b"RIFF half a copy")
    kept = recordings / "0123456789abcdef.wav"
    kept.write_bytes(b"RIFF a finished copy")
    env = daemon_env()
    proc = subprocess.Popen([*vocabd_cmd(), "start", "--foreground", "-w", str(ws.root)], env=env)
    try:
        wait_until(lambda: any(e["event"] == "watcher.start" for e in log_events(ws)) if ws.log_file.exists()
                   else False, "the daemon to start")
        assert not any(p.exists() for p in torn) and kept.exists()
        [event] = [e for e in log_events(ws) if e["event"] == "daemon.torn_copies_removed"]
        assert sorted(event["files"]) == sorted(str(p.relative_to(ws.root)) for p in torn)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert vocabd(ws, "status", env=env).returncode == 0


def vocabd_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "vocabd"]
