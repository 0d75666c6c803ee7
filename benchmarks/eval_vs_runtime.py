"""Benchmark: `vocabd evaluate` with the offline base model against the wheel's own runtime (moonshine_cpp).

Both transcribe the same clips on the same machine in one run; prints WER, term recall and throughput.
    .venv/bin/python benchmarks/eval_vs_runtime.py ../shared/bench/allison/my_voice_eval.jsonl \
        ../shared/bench/safety/safety_eval.jsonl --jargon ../shared/bench/allison/jargon.txt
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from vocabd.asr.model import OFFLINE_MODEL, load_asr
from vocabd.audio import load_audio, write_wav
from vocabd.evaluation.evaluate import evaluate_clips
from vocabd.scoring.metrics import overall_recall, term_stats, wer
from vocabd.jargon import parse_jargon
from vocabd.manifest import load_manifest


def runtime_transcripts(paths: list[Path]) -> tuple[list[str], float]:
    """The wheel's C++ runtime, one clip at a time (its Python API takes WAV paths)."""
    import moonshine_cpp

    model = moonshine_cpp.MoonshineModel()
    with tempfile.TemporaryDirectory() as tmp:
        wavs = []
        for i, path in enumerate(paths):  # decoding FLAC is not timed: the runtime only reads WAV
            wav = Path(tmp) / f"{i}.wav"
            write_wav(wav, load_audio(path))
            wavs.append(wav)
        start = time.perf_counter()
        texts = [model.transcribe_wav(str(w)).strip() for w in wavs]
        return texts, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifests", nargs="+", type=Path)
    parser.add_argument("--jargon", type=Path)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    terms = [t.written for t in parse_jargon(args.jargon)] if args.jargon else []
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, {platform.platform()}")
    asr = load_asr(OFFLINE_MODEL)
    rows = []
    for manifest in args.manifests:
        clips = load_manifest(manifest)
        ours = evaluate_clips(asr, clips, terms, args.batch_size, progress=False)
        refs = [c.text for c in clips]
        theirs, runtime_wall = runtime_transcripts([c.audio for c in clips])
        theirs_terms = term_stats(refs, theirs, terms)
        rows.append({
            "manifest": str(manifest), "clips": len(clips), "audio_min": round(ours.audio_seconds / 60, 2),
            "vocabd": {"wer": round(ours.wer, 4), "wer_normalized": round(ours.wer_normalized, 4),
                       "term_recall": ours.term_recall, "wall_s": round(ours.wall_seconds, 1),
                       "audio_s_per_s": round(ours.audio_seconds / ours.wall_seconds, 1)},
            "moonshine_cpp": {"wer": round(wer(refs, theirs), 4),
                              "wer_normalized": round(wer(refs, theirs, normalized=True), 4),
                              "term_recall": overall_recall(theirs_terms), "wall_s": round(runtime_wall, 1),
                              "audio_s_per_s": round(ours.audio_seconds / runtime_wall, 1)},
            "same_transcript": sum(a == b for a, b in zip(theirs, (u.hyp for u in ours.utterances))),
        })
        print(json.dumps(rows[-1], indent=1))


if __name__ == "__main__":
    main()
