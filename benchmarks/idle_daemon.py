"""Idle vocabd daemon: start-up time, resident memory and CPU use over a minute, stop time (Linux /proc).

    python benchmarks/idle_daemon.py [--workspace WS] [--seconds 60]

Without --workspace a fresh one is made in a temporary folder. Prints a JSON summary and a markdown row.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vocabd.chain.lock import holder
from vocabd.workspace import init_workspace

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def memory_kib(pid: int) -> dict[str, int]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    out = {key: int(status[key].split()[0]) for key in ("VmRSS", "VmHWM", "Threads") if key in status}
    rollup = Path(f"/proc/{pid}/smaps_rollup")
    if rollup.exists():
        for line in rollup.read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    return out


def measure(ws_root: Path, seconds: float, warmup: float) -> dict:
    ws = init_workspace(ws_root)
    env = {**os.environ, "VOCABD_LOG_CONSOLE": "0"}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "vocabd", "start", "--foreground", "-w", str(ws.root)], env=env)
    while (holder(ws) or {}).get("pid") != proc.pid:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited with {proc.returncode}")
        time.sleep(0.01)
    startup = time.monotonic() - t0
    time.sleep(warmup)
    cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(seconds)
    cpu1, wall1 = cpu_seconds(proc.pid), time.monotonic()
    mem = memory_kib(proc.pid)
    torch_loaded = "torch" in Path(f"/proc/{proc.pid}/maps").read_text()
    t1 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    return {
        "startup_s": round(startup, 2), "idle_window_s": round(wall1 - wall0, 1),
        "cpu_percent": round(100 * (cpu1 - cpu0) / (wall1 - wall0), 3), "cpu_seconds": round(cpu1 - cpu0, 3),
        "rss_mib": round(mem["VmRSS"] / 1024, 1), "peak_rss_mib": round(mem["VmHWM"] / 1024, 1),
        "pss_mib": round(mem.get("Pss", 0) / 1024, 1), "threads": mem.get("Threads"),
        "torch_mapped": torch_loaded, "stop_s": round(time.monotonic() - t1, 2), "exit_code": code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.workspace or Path(tmp) / "ws", args.seconds, args.warmup)
    print(json.dumps(result, indent=2))
    print(f"| {result['startup_s']} s | {result['rss_mib']} MiB (PSS {result['pss_mib']}) | "
          f"{result['cpu_percent']} % ({result['cpu_seconds']} s CPU in {result['idle_window_s']} s) | "
          f"{result['threads']} | {result['stop_s']} s |")


if __name__ == "__main__":
    main()
