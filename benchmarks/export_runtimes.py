"""Benchmark: the exported personal model in onnxruntime and in moonshine_cpp against vocabd's PyTorch path.

Merges ADAPTER into the offline base, exports it as onnx and moonshine-cpp, transcribes MANIFEST with all
three and prints normalized WER, how many clips give the same text as PyTorch, and each runtime's speed.
    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/export_runtimes.py \
        ../shared/bench/allison/my_voice_eval.jsonl --adapter runs/NAME/best
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
from vocabd.scoring.metrics import normalize, wer
from vocabd.export.greedy import OnnxTranscriber
from vocabd.export.moonshine_cpp import runtime_transcribe
from vocabd.export.run import export_model
from vocabd.manifest import read_manifest


def scored(name: str, refs: list[str], texts: list[str], reference: list[str], wall: float, audio_s: float) -> dict:
    return {"runtime": name, "wer_normalized": round(wer(refs, texts, normalized=True), 4),
            "wer": round(wer(refs, texts), 4),
            "same_text_as_pytorch": sum(a == b for a, b in zip(texts, reference)),
            "same_normalized_text": sum(normalize(a) == normalize(b) for a, b in zip(texts, reference)),
            "wall_s": round(wall, 1), "audio_s_per_s": round(audio_s / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--adapter", type=Path, required=True)
    parser.add_argument("--model", default=OFFLINE_MODEL, help="Base model (moonshine-cpp export needs the offline one).")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, {platform.platform()}")
    clips, problems = read_manifest(args.manifest)
    refs = [c.text for c in clips]
    asr = load_asr(args.model, args.adapter)
    # The reference is one clip at a time, as the runtimes run: padding a clip to its batch's longest
    # changes a few outputs (Moonshine's front end normalizes over the padded length).
    ours = evaluate_clips(asr, clips, [], 1, progress=False)
    pytorch = [u.hyp for u in ours.utterances]
    batched = evaluate_clips(asr, clips, [], 8, progress=False)
    del asr
    rows = [scored("pytorch (vocabd evaluate code, 1 clip at a time)", refs, pytorch, pytorch, ours.wall_seconds,
                   ours.audio_seconds),
            scored("pytorch (vocabd evaluate code, batch 8)", refs, [u.hyp for u in batched.utterances], pytorch,
                   batched.wall_seconds, ours.audio_seconds)]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("onnx", "moonshine-cpp"):
            start = time.perf_counter()
            export_model(Path(tmp) / fmt, fmt, args.model, args.adapter)
            print(f"export {fmt}: {time.perf_counter() - start:.1f} s")
        audios = [load_audio(c.audio) for c in clips]
        texts, wall = OnnxTranscriber(Path(tmp) / "onnx").transcribe_all(audios)
        rows.append(scored("onnxruntime (greedy, no cache, 1 clip at a time)", refs, texts, pytorch, wall,
                           ours.audio_seconds))
        wavs = []
        for i, audio in enumerate(audios):  # the runtime reads 16 kHz WAV files
            wavs.append(Path(tmp) / f"{i}.wav")
            write_wav(wavs[-1], audio)
        start = time.perf_counter()
        texts, _ = runtime_transcribe(Path(tmp) / "moonshine-cpp", wavs)
        rows.append(scored("moonshine_cpp (its C++ runtime, incl. model load)", refs, texts, pytorch,
                           time.perf_counter() - start, ours.audio_seconds))
    print(json.dumps({"manifest": str(args.manifest), "clips": len(clips), "skipped": [str(p) for p in problems],
                      "audio_s": round(ours.audio_seconds, 1), "adapter": str(args.adapter), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
