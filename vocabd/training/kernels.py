"""Which CPU kernels the training pass uses.

torch sends fp32 matmuls to its BLAS (MKL) unless oneDNN may use reduced-precision math for them. On an x86
CPU without AMX, oneDNN has no faster math to use, so it computes in fp32 (the same losses to every printed
digit), and its kernels are faster: on the AMD EPYC of docs/benchmarks.md (2026-12-02) 2.2-2.6x per matmul and
12% per training step. With AMX the same setting would mean bf16 math, so there it stays off. Evaluation and
transcription keep torch's default everywhere.
"""

from __future__ import annotations

import platform
from contextlib import contextmanager
from typing import Iterator

X86 = ("x86_64", "amd64", "i686", "x86")


def onednn_fp32_matmul_available() -> bool:
    import torch

    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: True)  # unknown: assume AMX, leave it off
    return platform.machine().lower() in X86 and torch.backends.mkldnn.is_available() and not amx()


@contextmanager
def training_matmul() -> Iterator[None]:
    """Inside: fp32 matmuls (forward and backward) through oneDNN's fp32 kernels where that is what they are."""
    import torch

    if not onednn_fp32_matmul_available():
        yield
        return
    backend = torch.backends.mkldnn
    before = backend.matmul.fp32_precision
    backend.matmul.fp32_precision = "bf16"  # the switch to oneDNN; without AMX its math stays fp32
    try:
        yield
    finally:
        backend.matmul.fp32_precision = before
