"""Inbox rules (issue 5, item 2): what a dropped file is, whether it is usable, and where it goes.

- `<stem>.txt` with no same-stem audio: a jargon list, merged into `data/jargon.txt`;
- audio + same-stem `.txt`: a real recording and its transcript, appended to `data/my_voice_train.jsonl`
  or `data/my_voice_eval.jsonl` by a stable split on the transcript (vocabd/split.py);
- audio alone (or `voice.*`/`voice_ref.*` with a transcript): a voice sample for cloning,
  `data/voice_ref.wav` (24 kHz) + `data/voice_ref.txt`.
Handled files move to `inbox/done/`, unusable ones to `inbox/rejected/` with `<name>.reason.txt`.
Nothing is deleted; a file whose content was ingested before is set aside as a duplicate.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from vocabd.audio import AUDIO_SUFFIXES, SAMPLE_RATE, load_audio, write_wav
from vocabd.daemon import ledger
from vocabd.errors import AudioError
from vocabd.files import write_text
from vocabd.jargon import JargonError
from vocabd.jargon import parse_jargon as validate_jargon
from vocabd.log import get_logger
from vocabd.longform.pending import LONG_MANIFEST, MAX_LONG_SECONDS, store_long_recording
from vocabd.manifest import MAX_SECONDS, MIN_SECONDS
from vocabd.split import split_for_text
from vocabd.workspace import MY_VOICE_EVAL, MY_VOICE_TRAIN, Workspace

log = get_logger("vocabd.inbox")

DONE, REJECTED = "done", "rejected"
TRANSCRIPT_SUFFIX = ".txt"
JARGON_FILE = "jargon.txt"
VOICE_REF, VOICE_REF_TEXT = "voice_ref.wav", "voice_ref.txt"
RECORDINGS = "recordings"
INBOX_LOCK = ".inbox.lock"
VOICE_STEMS = ("voice", "voice_ref", "voice-ref", "voice_sample", "voice-sample")
VOICE_RATE = 24_000  # the cloning backend's rate (DESIGN.md §6)
VOICE_MIN_S, VOICE_MAX_S = 2.0, 30.0
MAX_TRANSCRIPT_CHARS = 2000
SILENCE = 1e-4
MAX_AUDIO_BYTES = 200 * 1024 * 1024  # far beyond a 30 s clip in any format; refused before decoding

# Editors and downloads write through temporary names; these are never touched.
IGNORED_PREFIXES = (".", "~$")  # dotfiles: .DS_Store, .sb-*, .#*, .x.part
IGNORED_SUFFIXES = (".swp", ".swx", ".part", ".tmp", ".crdownload", ".download", "~")

_lock = threading.Lock()


class Rejected(Exception):
    """A drop that cannot be used; the message becomes its `.reason.txt`."""


class Duplicate(Exception):
    pass


@dataclass
class Drop:
    kind: str  # jargon | recording | voice | unsupported | folder | ambiguous
    files: list[Path]
    problem: str = ""


@dataclass
class Outcome:
    drop: Drop
    status: str  # done | rejected | duplicate | gone (removed by someone else meanwhile)
    message: str
    moved: list[Path] = field(default_factory=list)


def is_ignored(name: str) -> bool:
    return name.startswith(IGNORED_PREFIXES) or name.endswith(IGNORED_SUFFIXES) or name in (DONE, REJECTED)


def inbox_entries(ws: Workspace) -> list[Path]:
    """Top-level inbox entries waiting to be handled (temp files and done/, rejected/ excluded)."""
    if not ws.inbox.is_dir():
        return []
    return sorted(p for p in ws.inbox.iterdir() if not is_ignored(p.name))


def group_key(path: Path) -> str:
    """`take1.wav` and `take1.txt` (or `take1.wav.txt`) share the key `take1`."""
    stem = path.stem
    if path.suffix.lower() == TRANSCRIPT_SUFFIX and Path(stem).suffix.lower() in AUDIO_SUFFIXES:
        stem = Path(stem).stem
    return stem


def classify(paths: Iterable[Path]) -> list[Drop]:
    groups: dict[str, list[Path]] = defaultdict(list)
    drops: list[Drop] = []
    for path in sorted(paths):
        if path.is_dir():
            drops.append(Drop("folder", [path], "folders are not read; drop the files themselves into inbox/"))
        else:
            groups[group_key(path)].append(path)
    for key, files in groups.items():
        drops.extend(_classify_group(key, files))
    return drops


def _classify_group(key: str, files: list[Path]) -> list[Drop]:
    texts = [p for p in files if p.suffix.lower() == TRANSCRIPT_SUFFIX]
    audios = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    drops = [Drop("unsupported", [p], _unsupported(p)) for p in files if p not in texts and p not in audios]
    if len(texts) > 1 or (texts and len(audios) > 1):
        names = ", ".join(p.name for p in texts + audios)
        drops.append(Drop("ambiguous", texts + audios,
                          f"{names} share the name '{key}'; give each recording exactly one same-name .txt"))
    elif texts and audios:
        kind = "voice" if key.lower() in VOICE_STEMS else "recording"
        drops.append(Drop(kind, [audios[0], texts[0]]))
    elif texts:
        drops.append(Drop("jargon", texts))
    else:
        drops.extend(Drop("voice", [a]) for a in audios)
    return drops


def _unsupported(path: Path) -> str:
    kinds = " ".join(AUDIO_SUFFIXES)
    suffix = path.suffix or "(no extension)"
    return f"unsupported file type {suffix}: expected a .txt jargon list or audio ({kinds}) with an optional same-name .txt transcript"


def handle(ws: Workspace, paths: Iterable[Path]) -> list[Outcome]:
    """Classify and ingest ready inbox entries; every entry ends in done/ or rejected/.

    Threads share a lock and processes (the daemon, `vocabd run --foreground`) an flock, so two
    handlers never take in the same file.
    """
    ws.data.mkdir(parents=True, exist_ok=True)
    with _lock, open(ws.data / INBOX_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        present = [p for p in paths if p.exists() or p.is_symlink()]
        return [ingest(ws, drop) for drop in classify(present)]


def ingest(ws: Workspace, drop: Drop) -> Outcome:
    if not all(p.exists() for p in drop.files):
        return Outcome(drop, "gone", "left the inbox before it was handled")
    try:
        message = _INGESTERS[drop.kind](ws, drop)
    except Duplicate as e:
        return _set_aside(ws, drop, "duplicate", str(e))
    except Rejected as e:
        return _set_aside(ws, drop, "rejected", str(e))
    except Exception as e:  # disk full, a decoder crash: set aside with the error, never retried blindly
        log.exception("inbox.error", files=[p.name for p in drop.files])
        return _set_aside(ws, drop, "rejected", f"could not be stored ({type(e).__name__}: {e})")
    moved = _move_group(drop.files, ws.inbox / DONE)
    log.info("inbox.done", kind=drop.kind, files=[p.name for p in drop.files], result=message)
    return Outcome(drop, "done", message, moved)


def _set_aside(ws: Workspace, drop: Drop, status: str, reason: str) -> Outcome:
    moved = _move_group(drop.files, ws.inbox / REJECTED)
    stamp = ledger.now_iso()
    for original, dest in zip(drop.files, moved):
        advice = ("nothing to do: its content is already in the workspace" if status == "duplicate"
                  else "fix it and drop it into the inbox again")
        line = reason if reason.startswith(f"{original.name}:") else f"{original.name}: {reason}"
        dest.with_name(dest.name + ".reason.txt").write_text(f"{line}\n\n({status} {stamp}; {advice})\n",
                                                             encoding="utf-8")
    log.warning(f"inbox.{status}", kind=drop.kind, files=[p.name for p in drop.files], reason=reason)
    return Outcome(drop, status, reason, moved)


def _move_group(paths: list[Path], folder: Path) -> list[Path]:
    """Move keeping names; on a clash all files of the group get the same `.N` so pairs stay pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(0, 100_000):
        targets = [folder / (p.name if n == 0 else f"{p.stem}.{n}{p.suffix}") for p in paths]
        if not any(t.exists() or t.is_symlink() for t in targets):
            break
    for path, target in zip(paths, targets):
        os.rename(path, target)
    return targets


# --- ingesters ---------------------------------------------------------------------------------


def _reject_only(ws: Workspace, drop: Drop) -> str:
    raise Rejected(drop.problem)


def _ingest_jargon(ws: Workspace, drop: Drop) -> str:
    path = drop.files[0]
    try:
        validate_jargon(path)  # the synthesizer's own parser: what passes here, the chain can read
    except JargonError as e:
        where = f" (line {e.line})" if e.line else ""
        raise Rejected(f"not a usable jargon list{where}: {e.problem}") from e
    raw = path.read_bytes()
    terms = explicit_terms(raw.decode("utf-8-sig"))
    digest = _check_new(ws, raw)
    added, changed = merge_jargon(ws.data / JARGON_FILE, terms)
    ledger.record(ws, "jargon", digest, [path.name], f"data/{JARGON_FILE}", material=bool(added or changed),
                  terms=len(terms), added=added)
    return f"{len(terms)} terms, {added} new, {changed} spoken forms updated"


def _ingest_recording(ws: Workspace, drop: Drop) -> str:
    audio_path, text_path = drop.files
    text = read_transcript(text_path)
    samples = _load(audio_path, SAMPLE_RATE, MIN_SECONDS, MAX_LONG_SECONDS)
    digest = _check_new(ws, audio_path.read_bytes())
    if len(samples) / SAMPLE_RATE > MAX_SECONDS:  # split into pieces by the chain (vocabd/longform/)
        message = store_long_recording(ws, samples, text, audio_path.name, group_key(audio_path), digest)
        ledger.record(ws, "recording", digest, [p.name for p in drop.files], f"data/{LONG_MANIFEST}", split="long")
        return message
    split = split_for_text(text)
    stored = ws.data / RECORDINGS / f"{digest[:16]}.wav"
    write_wav(stored, samples, SAMPLE_RATE)
    manifest = ws.manifest(MY_VOICE_EVAL if split == "eval" else MY_VOICE_TRAIN)
    row = {"audio": f"{RECORDINGS}/{stored.name}", "text": text, "duration": round(len(samples) / SAMPLE_RATE, 3),
           "speaker": "user", "source": "real", "id": f"{group_key(audio_path)}-{digest[:8]}",
           "origin": audio_path.name, "sha256": digest}
    _append_row(manifest, row)
    ledger.record(ws, "recording", digest, [p.name for p in drop.files], f"data/{manifest.name}", split=split)
    return f"recording -> {manifest.name} ({split})"


def _ingest_voice(ws: Workspace, drop: Drop) -> str:
    audio_path = drop.files[0]
    text = read_transcript(drop.files[1]) if len(drop.files) > 1 else None
    samples = _load(audio_path, VOICE_RATE, VOICE_MIN_S, VOICE_MAX_S)
    digest = _check_new(ws, audio_path.read_bytes())
    write_wav(ws.data / VOICE_REF, samples, VOICE_RATE)
    text_file = ws.data / VOICE_REF_TEXT
    if text is not None:
        text_file.write_text(text + "\n", encoding="utf-8")
    elif text_file.exists():
        text_file.unlink()  # it described the previous sample (whose original is kept in inbox/done/)
    ledger.record(ws, "voice", digest, [p.name for p in drop.files], f"data/{VOICE_REF}",
                  transcript=text is not None)
    return f"voice sample -> data/{VOICE_REF}" + (" + transcript" if text is not None else "")


_INGESTERS = {
    "jargon": _ingest_jargon, "recording": _ingest_recording, "voice": _ingest_voice,
    "unsupported": _reject_only, "folder": _reject_only, "ambiguous": _reject_only,
}


# --- checks --------------------------------------------------------------------------------------


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_new(ws: Workspace, data: bytes) -> str:
    digest = content_hash(data)
    seen = ledger.find_hash(ws, digest)
    if seen is not None:
        raise Duplicate(f"same content as {', '.join(seen['files'])}, ingested {seen['ingested']}")
    return digest


def _decode_text(path: Path, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Rejected(f"not UTF-8 text (byte {e.start}); save it as UTF-8") from e
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise Rejected("contains control characters; is it really a text file?")
    return text


def read_transcript(path: Path) -> str:
    text = " ".join(_decode_text(path, path.read_bytes()).split())
    if not text:
        raise Rejected(f"transcript {path.name} is empty")
    if len(text) > MAX_TRANSCRIPT_CHARS:
        raise Rejected(f"transcript {path.name} has {len(text)} characters; a clip's transcript is at most "
                       f"{MAX_TRANSCRIPT_CHARS} (split long recordings into clips under {MAX_SECONDS:.0f} s)")
    return text


def _load(path: Path, rate: int, min_s: float, max_s: float) -> np.ndarray:
    size = path.stat().st_size
    if size > MAX_AUDIO_BYTES:
        raise Rejected(f"{path.name}: {size / 2**20:.0f} MiB is far too large for a clip of at most {max_s:g} s; "
                       "cut it into sentences")
    try:
        samples = load_audio(path, rate)
    except AudioError as e:
        raise Rejected(f"{path.name}: {e.problem}") from e
    seconds = len(samples) / rate
    if not min_s <= seconds <= max_s:
        advice = f"; cut it into pieces under {max_s:g} s, each with its own transcript" if seconds > max_s else ""
        raise Rejected(f"{path.name}: {seconds:.2f} s long; expected {min_s:g}-{max_s:g} s{advice}")
    if float(np.abs(samples).max()) < SILENCE:
        raise Rejected(f"{path.name}: audio is silent")
    return samples


def _append_row(manifest: Path, row: dict) -> None:
    """Append one JSONL row unless a row for this content is already there (a crash between steps)."""
    manifest.parent.mkdir(parents=True, exist_ok=True)
    if manifest.exists() and f'"sha256": "{row["sha256"]}"' in manifest.read_text(encoding="utf-8"):
        return
    with manifest.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


# --- jargon lists --------------------------------------------------------------------------------

_COMMENT = re.compile(r"(^|\s)#.*$")  # as in vocabd.jargon: "C#" keeps its '#'


def explicit_terms(text: str) -> list[tuple[str, str | None]]:
    """(written, spoken as given or None) per line of a list `vocabd.jargon` accepted.

    The merged list keeps only spoken forms a user wrote; derived ones stay derived at synthesis time.
    """
    terms: list[tuple[str, str | None]] = []
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw).strip()
        if line:
            written, _, spoken = (" ".join(part.split()) for part in line.partition("|"))
            terms.append((written, spoken or None))
    return terms


def merge_jargon(path: Path, terms: list[tuple[str, str | None]]) -> tuple[int, int]:
    """Merge into the workspace list; returns (terms added, spoken forms changed)."""
    current: dict[str, str | None] = {}
    if path.exists():
        current = dict(explicit_terms(path.read_text(encoding="utf-8")))
    added = changed = 0
    for written, spoken in terms:
        if written not in current:
            added += 1
            current[written] = spoken
        elif spoken is not None and current[written] != spoken:
            changed += 1
            current[written] = spoken
    lines = ["# vocabd jargon list, merged from inbox drops: one term a line, 'written | spoken' where they differ."]
    lines += [w if s is None else f"{w} | {s}" for w, s in current.items()]
    write_text(path, "\n".join(lines) + "\n")
    return added, changed
