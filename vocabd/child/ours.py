"""Is a pid read from a file really ours? (A pid in a workspace file is data, not proof.)

A process is proven to be one of vocabd's own when it holds the lock it should hold (Linux lists flock
holders in /proc/locks) and its command line is the one vocabd started it with.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Sequence


def command_line(pid: int) -> str | None:
    """The process's arguments joined by spaces (Linux: /proc; elsewhere `ps`); None when it is gone."""
    if Path("/proc/self/cmdline").exists():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        return " ".join(part for part in raw.split("\0") if part) or None
    try:
        done = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def lock_holders(path: Path) -> set[int] | None:
    """Pids holding an flock on `path` (from /proc/locks); None where the system does not say."""
    try:
        inode = os.stat(path).st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    holders = set()
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
            holders.add(int(parts[4]))
    return holders


def is_ours(pid: object, lock: Path, *expected: Sequence[str]) -> bool:
    """`pid` holds `lock` (where the system can tell) and its argv holds each of `expected`."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1 or pid == os.getpid():
        return False
    holders = lock_holders(lock)
    if holders is not None and pid not in holders:
        return False
    command = command_line(pid)
    return command is not None and all(f" {' '.join(part)} " in f" {command} " for part in expected)
