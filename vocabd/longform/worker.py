"""Split the workspace's pending long recordings (`python -P -m vocabd.longform.worker REQUEST.json RESULT.json`,
request `{"workspace"}`).

Each recording is cut in its pauses into pieces under 30 s, the pieces are transcribed with the base model,
and the transcript is shared out by aligning those words to it. Kept pieces become ordinary recordings
(`data/recordings/<hash>-pNN.wav`, a row in my_voice_train or my_voice_eval by the usual split); the others
are listed with the reason in `data/long_pieces.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vocabd.audio import SAMPLE_RATE, load_audio, write_wav
from vocabd.errors import VocabdError
from vocabd.files import write_json
from vocabd.log import configure_logging, get_logger
from vocabd.longform.align import PieceText, share_transcript
from vocabd.longform.pending import append_row, pending, read_results, require_workspace_file
from vocabd.longform.silence import cut_points
from vocabd.split import split_for_text
from vocabd.workspace import LONG_PIECES, MY_VOICE_EVAL, MY_VOICE_TRAIN, Workspace, open_workspace

log = get_logger("vocabd.longform")


@dataclass
class Piece:
    start: float
    end: float
    in_pause: bool  # the cut before it fell in a pause (not forced at the quietest frame)
    share: PieceText


def split_recording(asr: Any, audio: np.ndarray, text: str) -> list[Piece]:
    """Pieces of `audio` with their part of `text` (each checked; see PieceText.reason)."""
    from vocabd.asr.transcribe import transcribe

    cuts = cut_points(audio)
    bounds = [0.0] + [t for t, _ in cuts] + [len(audio) / SAMPLE_RATE]
    pauses = [True] + [p for _, p in cuts]
    clips = [audio[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] for a, b in zip(bounds, bounds[1:])]
    hypotheses = transcribe(asr, clips, batch_size=1)
    shares = share_transcript(text, hypotheses)
    return [Piece(a, b, p, s) for a, b, p, s in zip(bounds, bounds[1:], pauses, shares)]


def store_pieces(ws: Workspace, row: dict[str, Any], audio: np.ndarray, pieces: list[Piece],
                 mode: int | None = None) -> dict[str, Any]:
    """Kept pieces written with the long recording's permission bits `mode` (private stays private)."""
    digest = row["sha256"]
    kept, left_out = [], []
    for number, piece in enumerate(pieces, start=1):
        where = {"piece": number, "start": round(piece.start, 2), "end": round(piece.end, 2),
                 "text": piece.share.text, "base_model_heard": piece.share.hypothesis, "wer": round(piece.share.wer, 3)}
        if not piece.share.kept:
            left_out.append(where | {"reason": piece.share.reason})
            continue
        name = f"{digest[:16]}-p{number:02d}.wav"
        samples = audio[int(piece.start * SAMPLE_RATE):int(piece.end * SAMPLE_RATE)]
        write_wav(ws.data / "recordings" / name, samples, SAMPLE_RATE, mode=mode)
        split = split_for_text(piece.share.text)
        append_row(ws.manifest(MY_VOICE_EVAL if split == "eval" else MY_VOICE_TRAIN), {
            "audio": f"recordings/{name}", "text": piece.share.text, "duration": round(len(samples) / SAMPLE_RATE, 3),
            "speaker": "user", "source": "real", "id": f"{row['id']}-p{number:02d}", "origin": row.get("origin"),
            "sha256": f"{digest}-p{number:02d}", "long_recording": digest}, mode)
        kept.append(where | {"audio": f"recordings/{name}", "split": split})
    return {"origin": row.get("origin"), "duration": row.get("duration"), "kept": kept, "left_out": left_out}


def split_workspace(ws: Workspace) -> dict[str, Any]:
    """Split every pending recording; results are saved after each one, so a crash loses at most one."""
    from vocabd.asr.model import load_asr

    waiting = pending(ws)
    if not waiting:
        return {}
    asr = load_asr(ws.config.model.base)
    results = read_results(ws)
    for row in waiting:
        try:
            path = require_workspace_file(ws, row["audio"])
            audio = load_audio(path)
            outcome = store_pieces(ws, row, audio, split_recording(asr, audio, row["text"]), path.stat().st_mode & 0o777)
        except Exception as e:  # one bad recording must not stop the others
            log.exception("long_recording_failed", origin=row.get("origin"))
            outcome = {"origin": row.get("origin"), "kept": [], "left_out": [],
                       "error": f"{type(e).__name__}: {e}"}
        results[row["sha256"]] = outcome
        write_json(ws.data / LONG_PIECES, results)
        log.info("long_recording_split", origin=row.get("origin"), kept=len(outcome["kept"]),
                 left_out=len(outcome["left_out"]), reasons=[p["reason"] for p in outcome["left_out"]])
    return results


def handle(data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data.get("workspace"), str):
        raise VocabdError("a splitting request names a workspace")
    ws = open_workspace(Path(data["workspace"]))
    configure_logging(ws.log_file)
    return {"recordings": len(split_workspace(ws))}


if __name__ == "__main__":
    from vocabd.child.worker import serve

    serve(handle)
