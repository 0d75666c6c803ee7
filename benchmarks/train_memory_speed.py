"""Trainer memory and speed, side by side: DoRA and plain LoRA on the same batches (issue 10).

    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/train_memory_speed.py WORKDIR [--steps 20]

Each variant is a real `vocabd run-experiment` process on the `allison` user (../shared/bench, read-only:
its training manifest, the replay pool at the default ratio) with the real offline base model and the
workspace defaults, so the same seed gives every variant the same batches. Then a worst case: DoRA on
clips of 27-30 s (allison clips joined end to end, written under WORKDIR), where batches hit the padded-audio
caps. Prints per variant: peak RSS (the process's high-water mark) and its RSS over time, s/step (wall and
CPU), audio seconds trained per second, one dev evaluation's time, and the projected phase 2 at the
defaults (load + [full] max_steps steps + one dev evaluation per eval interval) with the dev-eval share.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chain_allison import absolute_rows  # benchmarks/ is on sys.path when a script here runs

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"
SKIP_FIRST = 2  # the first steps warm up the allocator and oneDNN's kernels


@dataclass
class Result:
    name: str
    flags: list[str]
    peak_rss_mb: float = 0.0
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, RSS MB)
    events: list[dict] = field(default_factory=list)
    started: float = 0.0
    wall: float = 0.0

    def steps(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "train"]

    def measured(self) -> list[dict]:
        steps = self.steps()
        return steps[SKIP_FIRST:] if len(steps) > SKIP_FIRST else steps

    def s_per_step(self) -> float:
        return statistics.mean(e["seconds"] for e in self.measured())

    def cpu_per_step(self) -> float:
        return statistics.mean(e["cpu_seconds"] for e in self.measured())

    def audio_per_s(self) -> float:
        steps = self.measured()
        return sum(e["audio_s"] for e in steps) / sum(e["seconds"] for e in steps)

    def eval_s(self) -> float:
        return statistics.mean(e["seconds"] for e in self.events if e["event"] == "eval")

    def load_s(self) -> float:
        start = next(e for e in self.events if e["event"] == "start")
        return start["time"] - self.started

    def rss_at(self, when: float) -> float:
        before = [mb for t, mb in self.timeline if t <= when - self.started]
        return before[-1] if before else 0.0


def long_clips(source: Path, dest_dir: Path, count: int) -> Path:
    """`count` clips of 27-30 s: consecutive allison clips joined with 0.3 s of silence, texts joined too."""
    from vocabd.audio import SAMPLE_RATE, load_audio, write_wav

    dest_dir.mkdir(parents=True, exist_ok=True)
    rows, parts, texts, made = [], [], [], 0
    gap = np.zeros(int(0.3 * SAMPLE_RATE), dtype=np.float32)
    for line in source.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["duration"] > 20:
            continue
        parts += [load_audio(source.parent / row["audio"]), gap]
        texts.append(row["text"])
        seconds = sum(len(p) for p in parts) / SAMPLE_RATE
        if seconds >= 27:
            if seconds <= 30:
                path = dest_dir / f"long{made:02d}.wav"
                write_wav(path, np.concatenate(parts), SAMPLE_RATE)
                rows.append(json.dumps({"audio": str(path), "text": " ".join(texts), "id": path.stem}))
                made += 1
            parts, texts = [], []
            if made == count:
                break
    manifest = dest_dir / "long.jsonl"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest


def workspace(root: Path) -> Path:
    from vocabd.workspace import init_workspace

    ws = init_workspace(root / "ws").root
    (ws / "vocabd.toml").write_text('[model]\nbase = "moonshine-cpp"\n\n[data]\nallow_outside = true\n')
    return ws


def run_variant(ws: Path, name: str, flags: list[str]) -> Result:
    """One `vocabd run-experiment` process; RSS sampled every 0.2 s, the peak from the kernel (ru_maxrss)."""
    result = Result(name=name, flags=flags)
    cmd = [sys.executable, "-m", "vocabd", "run-experiment", name, "-w", str(ws), *flags]
    result.started = time.time()
    with open(ws / f"{name}.out", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    done = threading.Event()

    def sample() -> None:
        status = Path(f"/proc/{proc.pid}/status")
        while not done.is_set():
            try:
                kb = next(int(line.split()[1]) for line in status.read_text().splitlines()
                          if line.startswith("VmRSS"))
                result.timeline.append((time.time() - result.started, kb / 1024))
            except (OSError, StopIteration, ValueError):
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, code, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    result.wall = time.time() - result.started
    peak_kb = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    result.peak_rss_mb = peak_kb / 1024
    if os.waitstatus_to_exitcode(code) != 0:
        sys.exit(f"{name} failed: see {ws / (name + '.out')}")
    log = ws / "runs" / name / "log.jsonl"
    result.events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return result


def projected_phase2(r: Result) -> tuple[float, float]:
    """(seconds, dev-eval share) of phase 2 at the workspace defaults."""
    from vocabd.config import Config

    full = Config().full
    evals = full.max_steps // full.eval_interval + 1  # step 0 and every interval
    eval_total = evals * r.eval_s()
    total = r.load_s() + full.max_steps * r.s_per_step() + eval_total
    return total, eval_total / total


def rss_story(r: Result) -> str:
    events = r.events
    start = next(e for e in events if e["event"] == "start")["time"]
    first_train = next((e["time"] for e in events if e["event"] == "train"), start)
    during = [mb for t, mb in r.timeline if t >= first_train - r.started]
    return (f"loaded {r.rss_at(start):.0f} MB, after the step-0 eval {r.rss_at(first_train):.0f} MB, "
            f"training max {max(during, default=0):.0f} MB, last {r.timeline[-1][1] if r.timeline else 0:.0f} MB")


def print_table(results: list[Result]) -> None:
    print("\n| variant | peak RSS | s/step (wall) | CPU s/step | audio s/s | dev eval | load | projected phase 2 | "
          "dev-eval share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        total, share = projected_phase2(r)
        print(f"| {r.name} | {r.peak_rss_mb / 1024:.2f} GiB | {r.s_per_step():.2f} | {r.cpu_per_step():.2f} | "
              f"{r.audio_per_s():.1f} | {r.eval_s():.1f} s | {r.load_s():.0f} s | {total / 60:.1f} min | "
              f"{100 * share:.1f}% |")
    print()
    for r in results:
        steps = r.steps()
        print(f"{r.name}: {' '.join(r.flags[-6:])}\n  {len(steps)} steps, {sum(e['audio_s'] for e in steps):.0f} s "
              f"of audio, longest step {max(e['audio_s'] for e in steps):.0f} s of audio; RSS: {rss_story(r)}; "
              f"whole process {r.wall:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--long-steps", type=int, default=3, help="worst-case steps on 27-30 s clips (0: none)")
    parser.add_argument("--bench", type=Path, default=BENCH)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS",
                        help="extra variant, e.g. 'dora-d0.1=--use-dora --lora-dropout 0.1'")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    args.workdir.mkdir(parents=True, exist_ok=True)
    ws = workspace(args.workdir)
    train, replay = args.workdir / "train.jsonl", args.workdir / "replay.jsonl"
    absolute_rows(args.bench / "allison" / "my_voice_train.jsonl", train)
    absolute_rows(args.bench / "replay" / "replay.jsonl", replay)
    common = ["--train", str(train), "--replay", str(replay), "--max-steps", str(args.steps),
              "--eval-interval", str(args.steps)]
    variants = [("dora", ["--use-dora"]), ("lora", ["--no-dora"])]
    variants += [(v.split("=", 1)[0], v.split("=", 1)[1].split()) for v in args.variant]
    results = []
    for name, flags in variants:
        print(f"running {name} ...", flush=True)
        results.append(run_variant(ws, name, [*common, *flags]))
    audio = [[e["audio_s"] for e in r.steps()] for r in results]
    print("same batches in every variant:", "yes" if all(a == audio[0] for a in audio) else "NO")
    if args.long_steps:
        long = long_clips(args.bench / "allison" / "my_voice_train.jsonl", args.workdir / "long", 24)
        print(f"running dora-30s (clips of 27-30 s from {long}) ...", flush=True)
        results.append(run_variant(ws, "dora-30s", ["--train", str(long), "--max-steps", str(args.long_steps),
                                                    "--eval-interval", str(args.long_steps), "--use-dora"]))
    print_table(results)


if __name__ == "__main__":
    main()
