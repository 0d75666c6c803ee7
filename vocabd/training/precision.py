"""The training pass's matmuls in bfloat16 where the CPU does them natively (Intel AMX or AVX512-BF16).

Autocast runs matrix products in bfloat16 and keeps norms, softmax and the loss in float32; the adapter's
weights, their gradients and AdamW's state stay float32. Elsewhere (Apple silicon, older x86) bfloat16 is
emulated and slower, so `auto` means float32 there. Dev evaluation and transcription stay float32.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

def native_bfloat16() -> bool:
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch's own CPU feature checks
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve(precision: str) -> str:
    """`auto` -> bfloat16 where native, else float32; the others as they are."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


@contextmanager
def training_precision(precision: str) -> Iterator[None]:
    """Autocast for one forward pass (and the backward it records) at the resolved `precision`."""
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        yield
