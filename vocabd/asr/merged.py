"""Base model + adapter, merged once and kept in the user cache, so the next `vocabd transcribe` (or
evaluate) loads plain weights: no PEFT import, no adapter attach, no merge.

An entry is keyed by the base model folder (path, and size and mtime of its weights) and the adapter's
bytes (`adapter_config.json`, `adapter_model.safetensors`): a retrained or replaced adapter is a new key.
Entries are transformers folders written to a temporary name and renamed into place; only the most
recently used few are kept. Weights are safetensors, never pickles.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from vocabd.log import get_logger

KEEP = 2  # merged models kept (each about as large as the base model: ~250 MB for Moonshine base)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
BASE_FILES = ("config.json", "model.safetensors")
DONE = "merged.done"
CACHE_ENV = "VOCABD_MERGED_CACHE"  # another folder (the tests use their own)

log = get_logger(__name__)


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("vocabd")) / "merged"


def merged_key(base: Path, adapter: Path) -> str:
    digest = hashlib.sha256(str(base.resolve()).encode())
    for name in BASE_FILES:
        path = base / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for name in ADAPTER_FILES:
        path = adapter / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:24]


def cached_merge(base: Path, adapter: Path) -> Path | None:
    """The merged folder for this base and adapter, when one was made before."""
    folder = cache_root() / merged_key(base, adapter)
    if not (folder / DONE).is_file():
        return None
    (folder / DONE).touch()  # most recently used
    return folder


def store_merge(net: Any, base: Path, adapter: Path) -> Path | None:
    """Save a merged model for next time; a failure (disk full, read-only cache) only costs the speed-up."""
    root = cache_root()
    folder = root / merged_key(base, adapter)
    staging = root / f".{folder.name}.{time.time_ns()}"
    try:
        net.save_pretrained(staging)
        (staging / DONE).write_text(f"{base}\n{adapter}\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        log.warning("merged_model_not_cached", adapter=str(adapter), error=str(e))
        return None
    _prune(root)
    log.info("merged_model_cached", adapter=str(adapter), folder=str(folder))
    return folder


def _prune(root: Path) -> None:
    entries = sorted((p for p in root.iterdir() if (p / DONE).is_file()), key=lambda p: (p / DONE).stat().st_mtime)
    for old in entries[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
