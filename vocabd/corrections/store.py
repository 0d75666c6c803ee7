"""Kept transcripts (`vocabd transcribe --keep`): the audio in `data/transcripts/`, one row each in
`data/transcripts.jsonl` (id, audio, hypothesis, model, when; the correction once given)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from vocabd.audio import SAMPLE_RATE, write_wav
from vocabd.errors import VocabdError
from vocabd.files import read_json, read_jsonl, real_folder, write_text
from vocabd.workspace import KEPT_TRANSCRIPTS, PROPOSED_TERMS, Workspace

FOLDER = "transcripts"
KEPT_ID = re.compile(r"t\d{3,}-[0-9a-f]{6}")  # what `keep` names a kept transcript; nothing else is one


def index_path(ws: Workspace) -> Path:
    return ws.data / KEPT_TRANSCRIPTS


def read_kept(ws: Workspace) -> list[dict[str, Any]]:
    return read_jsonl(index_path(ws))


def _write_all(ws: Workspace, rows: list[dict[str, Any]]) -> None:
    write_text(index_path(ws), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def keep(ws: Workspace, origin: Path, audio: np.ndarray, hypothesis: str, model: str) -> dict[str, Any]:
    """Store one transcribed recording; the same audio kept twice keeps its first id."""
    digest = hashlib.sha256(audio.tobytes()).hexdigest()
    rows = read_kept(ws)
    for row in rows:
        if row["sha256"] == digest:
            return row
    kept_id = f"t{len(rows) + 1:03d}-{digest[:6]}"
    write_wav(ws.data / FOLDER / f"{kept_id}.wav", audio, SAMPLE_RATE)
    row = {"id": kept_id, "audio": f"{FOLDER}/{kept_id}.wav", "origin": str(origin), "hypothesis": hypothesis,
           "model": model, "kept": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "duration": round(len(audio) / SAMPLE_RATE, 3), "sha256": digest, "correction": None}
    _write_all(ws, rows + [row])
    return row


def find(ws: Workspace, kept_id: str) -> dict[str, Any]:
    """The row whose id is exactly `kept_id`; rows of the index whose id is not one `keep` gives are ignored."""
    rows = [r for r in read_kept(ws) if isinstance(r.get("id"), str) and KEPT_ID.fullmatch(r["id"])]
    matches = [r for r in rows if r["id"] == kept_id]
    if len(matches) != 1:
        known = ", ".join(r["id"] for r in rows[-5:]) or "none yet (vocabd transcribe --keep FILE)"
        problem = f"{kept_id!r} is not a kept transcript id (like t001-ab12cd)" if not KEPT_ID.fullmatch(kept_id) \
            else f"no kept transcript {kept_id!r} in {index_path(ws)}"
        raise VocabdError(f"{problem}; recent ones: {known}")
    return matches[0]


def kept_audio(ws: Workspace, row: dict[str, Any]) -> Path:
    """`data/transcripts/<id>.wav`, where `keep` put the row's audio; the row's own `audio` must name it (the
    index is workspace data: a path it names elsewhere is never read) and no folder on the way may be a link."""
    expected = f"{FOLDER}/{row['id']}.wav"
    if row.get("audio") != expected:
        raise VocabdError(f"{row['id']}: its kept audio {row.get('audio')!r} is not {expected}; kept audio is read "
                          "only from data/transcripts/")
    return real_folder(ws.data, ws.data / FOLDER) / f"{row['id']}.wav"


def update(ws: Workspace, kept_id: str, **fields: Any) -> dict[str, Any]:
    rows = read_kept(ws)
    for row in rows:
        if row["id"] == kept_id:
            row.update(fields)
            _write_all(ws, rows)
            return row
    raise VocabdError(f"no kept transcript {kept_id!r} in {index_path(ws)}")


def read_proposed(ws: Workspace) -> dict[str, Any]:
    return read_json(ws.data / PROPOSED_TERMS) or {}
