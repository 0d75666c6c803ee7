"""The C allocator under torch: give freed memory back to the system (glibc only; elsewhere a no-op).

glibc keeps freed blocks for reuse: one arena per thread that ever allocated, and a "dynamic" mmap threshold
that rises to the size of the largest block freed (up to 32 MB), after which tensors of that size come from
the heap and stay there. A trainer whose batch lengths vary then grows in steps and never shrinks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD_BYTES = 4 << 20  # tensors from 4 MB up get their own mapping, returned to the system when freed
TRIM_THRESHOLD_BYTES = 64 << 20


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def tune_allocator() -> bool:
    """Few arenas and a fixed mmap threshold; call early, before the big allocations. False: not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt(M_ARENA_MAX, ARENAS)
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    return True


def release_free_memory() -> None:
    """Return the allocator's free pages to the system (after an evaluation, before a pause)."""
    import gc

    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
