"""Export the merged model into a new folder, one format at a time, with a note of what it is."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from vocabd.errors import VocabdError
from vocabd.export.check import CheckSet, self_check
from vocabd.log import get_logger

log = get_logger("vocabd.export")

FORMATS = ("moonshine-cpp", "onnx", "hf")
NOTE = "vocabd-export.json"


def check_destination(out: Path) -> None:
    if out.is_symlink() or out.is_file():
        raise VocabdError(f"{out}: exists and is not a folder; choose a new output folder")
    if out.is_dir() and any(out.iterdir()):
        raise VocabdError(f"{out}: folder is not empty; choose a new output folder (nothing is overwritten)")


def export_model(out: Path, fmt: str, model: str | None, adapter: Path | None, check: CheckSet | None = None) -> dict:
    """Merge `adapter` into `model` and write `fmt` into `out` (built in a staging folder, then renamed). With
    `check`, an onnx or moonshine-cpp export must transcribe its clips like the PyTorch model (`check.py`), or
    nothing is written."""
    from vocabd.asr.model import load_asr

    if fmt not in FORMATS:
        raise VocabdError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out).expanduser().absolute()
    check_destination(out)
    asr = load_asr(model, adapter)
    if fmt == "moonshine-cpp":
        from vocabd.export.moonshine_cpp import require_offline_base

        require_offline_base(asr)  # before any work
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.exporting-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        details = _write(asr, fmt, staging)
        if check is not None and fmt != "hf":  # hf is the merged PyTorch model itself
            details["self_check"] = self_check(asr, fmt, staging, check)
        note = {"format": fmt, "base": asr.name, "base_path": str(asr.path),
                "adapter": str(adapter) if adapter else None, "vocabd": importlib.metadata.version("vocabd"),
                "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"), **details}
        (staging / NOTE).write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
        if out.is_dir():
            out.rmdir()  # empty, checked above
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("exported", out=str(out), format=fmt, base=asr.name, adapter=str(adapter or ""))
    return note


def _write(asr, fmt: str, folder: Path) -> dict:
    if fmt == "hf":
        from vocabd.export.hf import write_hf

        write_hf(asr, folder)
        return {"load_with": "transformers MoonshineForConditionalGeneration.from_pretrained(folder)"}
    if fmt == "onnx":
        from vocabd.export.onnx_export import write_onnx

        write_onnx(asr, folder)
        return {"load_with": "vocabd.export.greedy.OnnxTranscriber(folder), or onnxruntime directly"}
    from vocabd.export.moonshine_cpp import write_moonshine_cpp

    return write_moonshine_cpp(asr, folder) | {"load_with": "moonshine_cpp.MoonshineModel(model_dir_path=folder)"}
