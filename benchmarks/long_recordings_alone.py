"""Benchmark: a new user whose only drops are a few long recordings with their transcripts (no jargon list, no
short clip), in a default workspace: taken in, a chain started on them, and the chain's first step, the cut.

The recordings are a manifest's clips in order, joined with 0.5 s pauses until each is `--seconds` long. Prints
what each recording gave, the material the chain then has, and the cut's wall time.
    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/long_recordings_alone.py \\
        ../shared/bench/replay/replay.jsonl /tmp/long-alone
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vocabd.audio import SAMPLE_RATE, load_audio, write_wav
from vocabd.chain import stages
from vocabd.inbox.drops import handle, inbox_entries
from vocabd.longform.pending import outcome_lines
from vocabd.workspace import init_workspace


def drop_recordings(inbox: Path, manifest: Path, count: int, seconds: float) -> None:
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    pause = np.zeros(int(0.5 * SAMPLE_RATE), np.float32)
    clips = iter(rows)
    for n in range(count):
        audio: list[np.ndarray] = []
        words: list[str] = []
        while sum(len(a) for a in audio) < seconds * SAMPLE_RATE:
            row = next(clips)
            audio += [load_audio(manifest.parent / row["audio"]), pause]
            words.append(row["text"])
        write_wav(inbox / f"talk{n}.wav", np.concatenate(audio))
        (inbox / f"talk{n}.txt").write_text(" ".join(words), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest", type=Path)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--recordings", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=110.0)
    args = parser.parse_args()
    ws = init_workspace(args.workspace)
    drop_recordings(ws.inbox, args.manifest, args.recordings, args.seconds)
    print("taken in:", [o.status for o in handle(ws, inbox_entries(ws))])
    name, _, _ = stages.start_chain(ws)
    print("chain", name, "started on", stages.snapshot_material(ws))
    started = time.monotonic()
    error = stages.split_long_recordings(ws, name)
    print(f"cut in {time.monotonic() - started:.1f} s" + (f" (the splitting worker failed: {error})" if error else ""))
    print("\n".join(outcome_lines(ws)))
    material = stages.snapshot_material(ws)
    print("material after the cut:", material)
    stages.require_recordings_alone(ws, material)
    print("enough to train on and to measure with")


if __name__ == "__main__":
    main()
