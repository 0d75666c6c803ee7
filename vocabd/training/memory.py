"""The C allocator under torch: give freed memory back to the system (glibc only; elsewhere a no-op).

glibc keeps freed blocks for reuse, in one arena per thread that ever allocated (up to 8 per core), and
heap pages it keeps count in RSS until trimmed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8
ARENAS = 2  # not one per OpenMP thread: each arena keeps its own freed blocks


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def tune_allocator() -> bool:
    """Few arenas; call early, before the big allocations. False: not glibc.

    The mmap threshold stays glibc's (dynamic): a low fixed one would give every large activation its own
    mapping, page-faulted in afresh each step, and the micro-batches already bound what one step holds."""
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt(M_ARENA_MAX, ARENAS)
    return True


class HeapTrimmer:
    """Gives freed heap back whenever the process has grown `limit` bytes past what it held after the last
    trim. Each step's activations have other shapes and glibc keeps the freed blocks: without this the
    phase-2 trainer's resident size crept to 3.4 GB in 1000 steps while it used about 2.2. 384 MiB held a
    jargon-only phase 2 at 2.06 GiB, where 768 let it reach 2.24, at the same step time (docs/benchmark-log.md,
    2026-12-04)."""

    def __init__(self, limit: int = 384 * 2**20) -> None:
        self.limit = limit
        self.floor: int | None = None

    def after_step(self, rss: int | None) -> bool:
        """Trim if the resident size `rss` (`resident_bytes()`, read once per step) has grown; True when it
        trimmed."""
        if rss is None or (self.floor is not None and rss - self.floor <= self.limit):
            return False
        libc = _glibc()
        if libc is None:
            return False
        libc.malloc_trim(0)
        self.floor = resident_bytes()
        return True


def resident_bytes() -> int | None:
    """This process's resident set size (Linux; None elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def release_free_memory() -> None:
    """Return the allocator's free pages to the system (after an evaluation, before a pause)."""
    import gc

    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
