"""Benchmark: how big an adapter's change to each weight is against the int8 step of moonshine-cpp's graphs.

    flock /tmp/vocabd-heavy.lock .venv/bin/python benchmarks/export_int8_steps.py ADAPTER

Merges ADAPTER into the offline base (vocabd's own merge), finds every graph initializer it changes and prints,
over those tensors, the quantization step (the tensor's scale), the change's size, the share of the change that
requantizing onto the tensor's int8 grid would keep, and the share of int8 codes that would move.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from vocabd.asr.convert import ENCODER_PREFIX
from vocabd.asr.model import OFFLINE_MODEL, load_asr
from vocabd.asr.offline import wheel_files
from vocabd.asr.ort import quantized_initializers, read_ort
from vocabd.export.moonshine_cpp import changed_constants, int8_fidelity, merged_weights


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("adapter", type=Path)
    args = parser.parse_args()
    weights = merged_weights(load_asr(OFFLINE_MODEL, args.adapter))
    files = wheel_files()
    rows, floats = [], []
    for path, prefix in ((files.encoder, ENCODER_PREFIX), (files.decoder, "")):
        graph = read_ort(path)
        quantized = quantized_initializers(graph)
        for name, (old, new) in changed_constants(graph, weights, prefix).items():
            if name not in quantized:
                floats.append(name)
                continue
            scale, offset = (float(graph.initializers[n].reshape(-1)[0]) for n in quantized[name])
            kept, _ = int8_fidelity(old, new, scale, offset)
            codes = np.clip(np.rint((new - offset) / scale), -128, 127)
            change = np.abs(new - old)
            rows.append({"file": path.name, "step": scale, "max change": float(change.max()),
                         "median change": float(np.median(change)), "median change / step": float(np.median(change)) / scale,
                         "max change / step": float(change.max()) / scale, "int8 keeps of the change": kept,
                         "codes that move": float(np.mean(codes != graph.initializers[name]))})
    print(f"changed int8 tensors: {len(rows)} {dict(collections.Counter(r['file'] for r in rows))}; "
          f"changed float tensors: {len(floats)}")
    for key in rows[0] if rows else ():
        if key != "file":
            values = np.array([r[key] for r in rows])
            print(f"{key:26} median {np.median(values):.3g}  min {values.min():.3g}  max {values.max():.3g}")


if __name__ == "__main__":
    main()
