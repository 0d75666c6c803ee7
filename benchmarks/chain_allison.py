"""The whole chain on the `allison` benchmark user (issue 5 acceptance), with the real offline model.

    flock /tmp/vocabd-bench.lock .venv/bin/python benchmarks/chain_allison.py WORKSPACE [--full-steps N]

Builds a workspace in WORKSPACE that points at ../shared/bench (read-only, nothing copied into the repo):
its jargon list dropped into inbox/, its recordings as data/my_voice_{train,eval}.jsonl (absolute paths,
`data.allow_outside = true`), ../shared/bench/replay as the replay pool, the safety set as
data/safety_eval.jsonl (a yardstick only: never trained on). Then runs `vocabd run --foreground`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"

CONFIG = """\
[model]
base = "moonshine-cpp"

[data]
allow_outside = true

[mini]
clips = 5
max_steps = 50
eval_interval = 25

[full]
clips = {clips}
max_steps = {steps}
eval_interval = {interval}

[train]
replay = "{replay}"
"""


def absolute_rows(source: Path, dest: Path) -> int:
    """Copy a manifest with its audio paths made absolute (the audio stays in ../shared/bench)."""
    rows = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            row["audio"] = str((source.parent / row["audio"]).resolve())
            rows.append(json.dumps(row, ensure_ascii=False))
    dest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--full-clips", type=int, default=500)
    parser.add_argument("--full-steps", type=int, default=1000)
    parser.add_argument("--eval-interval", type=int, default=100)
    args = parser.parse_args()
    root = args.workspace.resolve()
    if root.exists():
        shutil.rmtree(root)
    (root / "data").mkdir(parents=True)
    (root / "inbox").mkdir()
    (root / "vocabd.toml").write_text(CONFIG.format(
        clips=args.full_clips, steps=args.full_steps, interval=args.eval_interval,
        replay=BENCH / "replay" / "replay.jsonl"))
    shutil.copyfile(BENCH / "allison" / "jargon.txt", root / "inbox" / "jargon.txt")
    counts = {name: absolute_rows(BENCH / "allison" / f"{name}.jsonl", root / "data" / f"{name}.jsonl")
              for name in ("my_voice_train", "my_voice_eval")}
    counts["safety_eval"] = absolute_rows(BENCH / "safety" / "safety_eval.jsonl", root / "data" / "safety_eval.jsonl")
    print(f"workspace {root}: {counts}", flush=True)
    start = time.time()
    vocabd = Path(sys.executable).parent / "vocabd"
    done = subprocess.run([str(vocabd), "run", "--foreground", "-w", str(root)])
    print(f"chain wall time: {time.time() - start:.0f} s (exit {done.returncode})")
    chain = json.loads((root / "data" / "chain.json").read_text())
    for phase, stages in chain.get("timings", {}).items():
        for stage, t in stages.items():
            print(f"{phase:5} {stage:10} {t['wall_s']:8.1f} s  ({t['runs']} runs)")


if __name__ == "__main__":
    main()
