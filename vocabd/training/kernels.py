"""Which CPU kernels the training pass uses.

torch sends fp32 matmuls to its BLAS unless oneDNN may use reduced-precision math for them. On x86 the
oneDNN path trains 12% faster a step (docs/benchmarks.md, 2026-12-02); on a CPU without AMX it still
computes in fp32 (the same losses to every printed digit), and with AMX it uses bf16 math, as mixed-precision
training does, weights and everything else staying fp32. Evaluation and transcription keep torch's default.
"""

from __future__ import annotations

import platform
from contextlib import contextmanager
from typing import Iterator

X86 = ("x86_64", "amd64", "i686", "x86")


@contextmanager
def training_matmul() -> Iterator[None]:
    """Inside: fp32 matmuls (forward and backward) through oneDNN, on x86 where torch has it."""
    import torch

    backend = torch.backends.mkldnn
    if platform.machine().lower() not in X86 or not backend.is_available():
        yield
        return
    before = backend.matmul.fp32_precision
    backend.matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        backend.matmul.fp32_precision = before
