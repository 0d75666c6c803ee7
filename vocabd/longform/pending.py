"""Long recordings waiting to be split (light: the daemon imports this, never torch).

Ingest stores a recording over 30 s as `data/recordings/long/<hash>.wav` with a row in
`data/long_recordings.jsonl`; the chain's first stage runs the splitting worker (`python -P -m
vocabd.longform.worker REQUEST.json RESULT.json`) on those not yet split, whose outcome per recording lands in `data/long_pieces.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from vocabd.audio import SAMPLE_RATE, write_wav
from vocabd.child.worker import WorkerFailed, WorkerKilled, run_worker
from vocabd.errors import VocabdError
from vocabd.files import open_append, read_json, read_jsonl
from vocabd.log import get_logger
from vocabd.workspace import LONG_PIECES, LONG_RECORDINGS, Workspace

log = get_logger("vocabd.longform")

LONG_FOLDER = "recordings/long"
MAX_LONG_SECONDS = 300.0  # longer recordings are still refused at ingest
SPLIT_TIMEOUT_S = 1800


def append_row(manifest: Path, row: dict[str, Any], mode: int | None = None) -> None:
    """Append one JSONL row unless one with the same sha256 is there already (a crash between steps)."""
    manifest.parent.mkdir(parents=True, exist_ok=True)
    if manifest.exists() and f'"sha256": "{row["sha256"]}"' in manifest.read_text(encoding="utf-8"):
        return
    with open_append(manifest, mode) as f:  # never through a link planted at its name
        f.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def store_long_recording(ws: Workspace, samples: np.ndarray, text: str, origin: str, key: str, digest: str,
                         mode: int | None = None) -> str:
    """Keep a recording over 30 s for splitting (with the drop's permission bits `mode`); returns the ingest message."""
    stored = ws.data / LONG_FOLDER / f"{digest[:16]}.wav"
    write_wav(stored, samples, SAMPLE_RATE, mode=mode)
    seconds = round(len(samples) / SAMPLE_RATE, 3)
    append_row(ws.data / LONG_RECORDINGS, {"audio": f"{LONG_FOLDER}/{stored.name}", "text": text, "duration": seconds,
                                         "id": f"{key}-{digest[:8]}", "origin": origin, "sha256": digest}, mode)
    return f"long recording ({seconds:.1f} s) -> {LONG_RECORDINGS}: split into pieces under 30 s at the next chain"


def read_results(ws: Workspace) -> dict[str, Any]:
    return read_json(ws.data / LONG_PIECES) or {}


def pending(ws: Workspace) -> list[dict[str, Any]]:
    done = read_results(ws)
    return [row for row in read_jsonl(ws.data / LONG_RECORDINGS) if row.get("sha256") not in done]


def outcome_lines(ws: Workspace) -> list[str]:
    """What became of each long recording taken in, a line each (for an error or a report)."""
    results = read_results(ws)
    return [f"{row.get('origin')} ({float(row.get('duration') or 0):.0f} s, kept as data/{row.get('audio')}): "
            + _outcome(results.get(row.get("sha256")))
            for row in read_jsonl(ws.data / LONG_RECORDINGS)]


def _outcome(result: Any) -> str:
    if not isinstance(result, dict):
        return "not split yet"
    if result.get("error"):
        return f"could not be split ({result['error']})"
    kept, left_out = result.get("kept") or [], result.get("left_out") or []
    held_out = sum(piece.get("split") == "eval" for piece in kept)
    text = f"{len(kept)} piece(s) kept ({len(kept) - held_out} to train on, {held_out} held out)" if kept \
        else "no piece kept"
    if left_out:
        text += f", {len(left_out)} left out (the first: {left_out[0].get('reason')})"
    return text


def split_pending(ws: Workspace) -> dict[str, Any] | None:
    """Run the splitting worker when long recordings wait; None when none do. A failed worker is logged and
    its recordings stay pending for the next chain (the chain goes on without them)."""
    waiting = pending(ws)
    if not waiting:
        return None
    log.info("long_recordings_splitting", recordings=len(waiting))
    try:
        run_worker("vocabd.longform.worker", {"workspace": str(ws.root)}, cwd=ws.root, timeout=SPLIT_TIMEOUT_S,
                   log_file=ws.data / LONG_FOLDER / "worker.log")
    except subprocess.TimeoutExpired:
        log.error("long_recordings_split_timeout", seconds=SPLIT_TIMEOUT_S)
        return {"error": f"splitting took over {SPLIT_TIMEOUT_S} s"}
    except (WorkerFailed, WorkerKilled) as e:
        log.error("long_recordings_split_failed", error=str(e))
        return {"error": str(e)}
    results = read_results(ws)
    summary = {row["sha256"]: results.get(row["sha256"]) for row in waiting}
    log.info("long_recordings_split", kept=sum(len(r["kept"]) for r in summary.values() if r),
             left_out=sum(len(r["left_out"]) for r in summary.values() if r))
    return summary


def require_workspace_file(ws: Workspace, relative: str) -> Path:
    """A path from a workspace manifest that must stay inside data/ (no symlink out)."""
    path = (ws.data / relative).resolve()
    if not path.is_relative_to(ws.data.resolve()):
        raise VocabdError(f"{ws.data / LONG_RECORDINGS}: {relative!r} leaves the workspace's data/ folder")
    return path
