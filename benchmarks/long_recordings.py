"""Benchmark: split the long recordings (over 30 s) of a manifest with the real base model.

Prints, per recording, each piece (times, its share of the transcript, what the base model heard) and
whether it is kept or why it is left out.
    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/long_recordings.py \
        ../shared/bench/allison/my_voice_train.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vocabd.asr.model import OFFLINE_MODEL, load_asr
from vocabd.audio import SAMPLE_RATE, load_audio
from vocabd.longform.worker import split_recording
from vocabd.manifest import MAX_SECONDS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--model", default=OFFLINE_MODEL)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    asr = load_asr(args.model)
    for row in rows:
        audio = load_audio(args.manifest.parent / row["audio"])
        if len(audio) / SAMPLE_RATE <= MAX_SECONDS:
            continue
        start = time.perf_counter()
        pieces = split_recording(asr, audio, row["text"])
        kept = [p for p in pieces if p.share.kept]
        print(f"\n{row.get('id', row['audio'])}: {len(audio) / SAMPLE_RATE:.1f} s -> {len(pieces)} pieces, "
              f"{len(kept)} kept, {sum(p.end - p.start for p in kept):.1f} s kept ({time.perf_counter() - start:.1f} s)")
        for p in pieces:
            status = "kept" if p.share.kept else f"LEFT OUT: {p.share.reason}"
            print(f"  {p.start:6.2f}-{p.end:6.2f} s {'pause' if p.in_pause else 'forced'} WER {p.share.wer:.2f} {status}\n"
                  f"    text:  {p.share.text}\n    heard: {p.share.hypothesis}")


if __name__ == "__main__":
    main()
