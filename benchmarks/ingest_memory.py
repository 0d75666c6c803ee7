"""The daemon's memory after ingest: RSS idle, after taking in N recordings, and its peak (Linux /proc).

    python benchmarks/ingest_memory.py [--manifest ../shared/bench/allison/my_voice_train.jsonl] [--count 100]
        [--waves 10]

A fresh workspace in a temporary folder; a daemon (`vocabd start --foreground`, no chain: the settle
time is set far beyond the run) is started, its idle RSS read, then COUNT recordings of the manifest are
moved into its inbox as audio + transcript pairs in WAVES waves (each handled as its own batch), and RSS is
read again once all are handled.
Prints a JSON summary and a markdown row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from new_user_allison import set_value  # benchmarks/ is on sys.path when a script here runs
from vocabd.chain.lock import holder
from vocabd.workspace import init_workspace

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "allison" / "my_voice_train.jsonl"


def memory_mib(pid: int) -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {key: round(int(status[key].split()[0]) / 1024, 1) for key in ("VmRSS", "VmHWM")}


def stage_pairs(manifest: Path, count: int, dest: Path) -> int:
    """Audio + transcript pairs of the first `count` rows, in `dest` (outside the inbox)."""
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()][:count]
    for row in rows:
        audio = manifest.parent / row["audio"]
        stem = row.get("id") or audio.stem
        shutil.copyfile(audio, dest / f"{stem}{audio.suffix}")
        (dest / f"{stem}.txt").write_text(row["text"] + "\n", encoding="utf-8")
    return len(rows)


def handled(ws_inbox: Path) -> int:
    return sum(1 for folder in ("done", "rejected") if (ws_inbox / folder).is_dir()
               for p in (ws_inbox / folder).iterdir() if not p.name.endswith(".reason.txt"))


def measure(manifest: Path, count: int, tmp: Path, after_s: float, waves: int, wave_pause: float,
            with_chain: bool) -> dict:
    ws = init_workspace(tmp / "ws")
    if with_chain:
        set_value(ws.config_file, f'model.base = "{tmp / "no-model"}"')
    staged = tmp / "staged"
    staged.mkdir()
    files = 2 * stage_pairs(manifest, count, staged)
    settle = "30" if with_chain else "1000000"  # no chain while the recordings come in
    env = {**os.environ, "VOCABD_LOG_CONSOLE": "0", "VOCABD_SETTLE_S": settle, "VOCABD_DEBOUNCE_S": "0.5",
           "VOCABD_PAIR_WAIT_S": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vocabd", "start", "--foreground", "-w", str(ws.root)], env=env)
    try:
        while (holder(ws) or {}).get("pid") != proc.pid:
            if proc.poll() is not None:
                raise SystemExit(f"daemon exited with {proc.returncode}")
            time.sleep(0.05)
        time.sleep(3.0)
        idle = memory_mib(proc.pid)
        t0 = time.monotonic()
        staged_files = sorted(staged.iterdir())
        per_wave = -(-len(staged_files) // waves)
        for start in range(0, len(staged_files), per_wave):  # as a user copying recordings in over time
            for path in staged_files[start:start + per_wave]:
                shutil.move(path, ws.inbox / path.name)
            time.sleep(wave_pause)
        while handled(ws.inbox) < files:
            if time.monotonic() - t0 > 1800 or proc.poll() is not None:
                raise SystemExit(f"only {handled(ws.inbox)} of {files} files handled")
            time.sleep(0.2)
        ingest_s = time.monotonic() - t0
        time.sleep(after_s)
        after = memory_mib(proc.pid)
        rejected = sum(1 for p in (ws.inbox / "rejected").glob("*.reason.txt")) if (ws.inbox / "rejected").is_dir() else 0
        chain = run_in_daemon_stages(ws, proc.pid, after_s) if with_chain else {}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return {"recordings": files // 2, "waves": waves, "rejected_files": rejected, "ingest_s": round(ingest_s, 1),
            "idle_rss_mib": idle["VmRSS"], "rss_after_mib": after["VmRSS"], "peak_rss_mib": after["VmHWM"], **chain}


def stop_trainers(ws) -> None:
    """The train stage launched a trainer (its own session, failing on the missing model): stop it if it
    still runs, proven ours by its command line naming this workspace."""
    for status in ws.runs.glob("*/status.json"):
        pid = json.loads(status.read_text(encoding="utf-8")).get("pid")
        try:
            if isinstance(pid, int) and str(ws.root) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass


def run_in_daemon_stages(ws, pid: int, after_s: float) -> dict:
    """Let phase 1 run the stages the daemon runs in its own process (synthesize, mix), then read RSS.

    The base model is a missing folder: the trainer the train stage launches fails (or is stopped here)."""
    from vocabd.chain.status import chain_state

    (ws.root / "go.txt").write_text("PBX\n", encoding="utf-8")  # new material after the settle time: a chain
    (ws.root / "go.txt").rename(ws.inbox / "go.txt")
    t0 = time.monotonic()
    while True:
        chain = chain_state(ws)
        if chain.get("stage") not in (None, "synthesize", "mix") or chain.get("state") in ("failed", "done", "stopped"):
            break
        if time.monotonic() - t0 > 900:
            raise SystemExit(f"the chain did not get past mix: {chain}")
        time.sleep(0.2)
    stages_s = time.monotonic() - t0
    time.sleep(after_s)
    mem = memory_mib(pid)
    stop_trainers(ws)
    return {"chain_stages_s": round(stages_s, 1), "chain_stage_reached": chain.get("stage"),
            "rss_after_synthesize_mix_mib": mem["VmRSS"], "peak_rss_with_chain_mib": mem["VmHWM"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=BENCH)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--after", type=float, default=5.0, help="seconds to wait after the last file is handled")
    parser.add_argument("--chain", action="store_true",
                        help="then let phase 1 run its in-daemon stages (synthesize, mix) and read RSS again")
    parser.add_argument("--waves", type=int, default=10, help="drop the pairs in this many waves ...")
    parser.add_argument("--wave-pause", type=float, default=2.0, help="... this many seconds apart (one batch each)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.manifest, args.count, Path(tmp), args.after, args.waves, args.wave_pause, args.chain)
    print(json.dumps(result, indent=2))
    print(f"| {result['recordings']} in {result['waves']} waves | {result['ingest_s']} s | {result['idle_rss_mib']} MiB | "
          f"{result['rss_after_mib']} MiB | {result['peak_rss_mib']} MiB |")


if __name__ == "__main__":
    main()
