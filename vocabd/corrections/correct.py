"""A correction becomes a recording: the kept audio and the fixed text are dropped into `inbox/` as a pair
(so the daemon takes them in like any recording: split, ledger, next chain), and the misheard words that
are no dictionary word are proposed as jargon terms."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vocabd.audio import header_seconds
from vocabd.corrections.store import find, kept_audio, read_proposed, update
from vocabd.corrections.terms import add_proposed, known_terms, propose_terms, remove_proposed
from vocabd.errors import VocabdError
from vocabd.files import open_regular, real_folder, write_bytes, write_text
from vocabd.longform.pending import MAX_LONG_SECONDS
from vocabd.manifest import transcript_too_long
from vocabd.workspace import Workspace


def drop_pair(ws: Workspace, stem: str, audio: bytes, text: str) -> Path:
    """`inbox/<stem>.wav` + `.txt`, each written atomically under a hidden temporary name (vocabd.files: never
    through a link planted in the inbox)."""
    inbox = real_folder(ws.root, ws.inbox)
    wav, txt = inbox / f"{stem}.wav", inbox / f"{stem}.txt"
    if os.path.lexists(wav) or os.path.lexists(txt):
        raise VocabdError(f"{wav} is already in the inbox; wait for the daemon to take it in")
    write_text(txt, text + "\n")
    write_bytes(wav, audio)
    return wav


def apply_correction(ws: Workspace, kept_id: str, text: str) -> dict[str, Any]:
    """Record the fix, drop the pair into the inbox, propose unknown words; returns the updated row."""
    row = find(ws, kept_id)
    text = " ".join(text.split())
    if not text:
        raise VocabdError(f"{row['id']}: the corrected text is empty")
    if row.get("correction"):
        raise VocabdError(f"{row['id']} was already corrected to {row['correction']!r}; it is training material now")
    audio = kept_audio(ws, row)
    try:
        with open_regular(audio) as f:
            seconds = header_seconds(f, audio)
            f.seek(0)
            audio_bytes = f.read()
    except FileNotFoundError:
        raise VocabdError(f"{audio}: the kept audio of {row['id']} is missing") from None
    # refused here, where it can be fixed or left: the daemon would set the pair aside
    if seconds > MAX_LONG_SECONDS:
        raise VocabdError(f"{row['id']}: its audio is {seconds:.0f} s long; recordings over {MAX_LONG_SECONDS:.0f} s "
                          "are not taken in as training material")
    problem = transcript_too_long(text, seconds)
    if problem:
        raise VocabdError(f"{row['id']}: the corrected text has {problem}")
    terms = propose_terms(row["hypothesis"], text, known_terms(ws))
    dropped = drop_pair(ws, f"correction-{row['id']}", audio_bytes, text)
    if terms:
        add_proposed(ws, terms, row["id"])
    return update(ws, row["id"], correction=text, proposed_terms=terms, inbox=dropped.name,
                  corrected=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def accept_terms(ws: Workspace, terms: list[str]) -> tuple[list[str], Path | None]:
    """Turn proposed terms into a jargon list dropped into the inbox (the daemon merges it into
    data/jargon.txt and starts a chain). With no terms named, all proposed ones."""
    proposed = read_proposed(ws)
    chosen = terms or list(proposed)
    unknown = [t for t in chosen if t not in proposed]
    if unknown:
        raise VocabdError(f"not proposed: {', '.join(unknown)} (proposed: {', '.join(proposed) or 'none'})")
    if not chosen:
        return [], None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    target = real_folder(ws.root, ws.inbox) / f"accepted-terms-{stamp}.txt"
    write_text(target, "# jargon terms accepted from corrections (vocabd terms accept)\n" + "\n".join(chosen) + "\n")
    remove_proposed(ws, chosen)
    return chosen, target
