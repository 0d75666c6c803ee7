"""`vocabd transcribe` of one clip: wall time of the whole command, and where the time goes.

    python benchmarks/transcribe_startup.py CLIP [--adapter DIR] [--model moonshine-cpp] [--runs 2] [--no-steps]

Runs the real command `--runs` times (the first run with an adapter merges it and fills the merged-model
cache; later runs read that cache), then one process that times each step of the same path. Prints a
JSON summary and markdown rows. Run it under `flock /tmp/vocabd-heavy.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

STEPS = """
import json, sys, time
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import vocabd.cli; mark("import vocabd.cli")
import torch; mark("import torch")
from transformers import AutoTokenizer, MoonshineForConditionalGeneration; mark("import transformers")
from vocabd.asr.model import merged_weights, resolve_model, route_library_logging, Asr
from vocabd.asr.transcribe import transcribe
from vocabd.audio import load_audio
route_library_logging()
audio = load_audio(sys.argv[1]); mark("decode audio")
path = resolve_model(sys.argv[2]); mark("resolve model")
from vocabd.asr.identity import identify
identify(sys.argv[2], path); mark("identify (weights hash)")
tokenizer = AutoTokenizer.from_pretrained(path); mark("tokenizer")
if sys.argv[3]:
    from pathlib import Path
    net = merged_weights(path, Path(sys.argv[3])); mark("weights + adapter")
else:
    net = MoonshineForConditionalGeneration.from_pretrained(path, dtype=torch.float32); mark("weights")
asr = Asr(model=net.eval(), tokenizer=tokenizer, path=path, name=sys.argv[2])
transcribe(asr, [audio]); mark("transcribe")
print(json.dumps({b[0]: round(b[1] - a[1], 2) for a, b in zip(marks, marks[1:])}))
"""


def run_command(clip: Path, model: str, adapter: Path | None) -> float:
    cmd = [sys.executable, "-m", "vocabd", "transcribe", str(clip), "--model", model]
    cmd += ["--adapter", str(adapter)] if adapter else ["--base"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("clip", type=Path)
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--model", default="moonshine-cpp")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-steps", action="store_true", help="Only the command's wall time (older code).")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    walls = [run_command(args.clip, args.model, args.adapter) for _ in range(args.runs)]
    steps = {} if args.no_steps else json.loads(subprocess.run(
        [sys.executable, "-c", STEPS, str(args.clip), args.model, str(args.adapter or "")],
        check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    summary = {"clip": str(args.clip), "model": args.model, "adapter": str(args.adapter or ""), "walls_s": walls,
               "steps_s": steps, "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}
    print(json.dumps(summary, indent=1))
    print("| runs (wall s) | " + " | ".join(steps) + " |")
    print(f"| {', '.join(map(str, walls))} | " + " | ".join(str(v) for v in steps.values()) + " |")


if __name__ == "__main__":
    main()
