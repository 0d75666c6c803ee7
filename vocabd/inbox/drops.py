"""Inbox rules: what a dropped file is, whether it is usable, and where it goes.

- `<stem>.txt` with no same-stem audio: a jargon list, merged into `data/jargon.txt`;
- audio + same-stem `.txt`: a real recording and its transcript, appended to `data/my_voice_train.jsonl`
  or `data/my_voice_eval.jsonl` by a stable split on the transcript (vocabd/split.py);
- audio alone (or `voice.*`/`voice_ref.*` with a transcript): a voice sample for cloning,
  `data/voice_ref.wav` (24 kHz) + `data/voice_ref.txt`.
Handled files move to `inbox/done/`, unusable ones to `inbox/rejected/` with `<name>.reason.txt`.
Nothing is deleted; content ingested before in the same role is set aside as a duplicate (the same
audio may be a recording and the voice sample).

Nothing in the inbox is trusted: links are set aside unread, files are opened without
following links, `done/` and `rejected/` must be real folders inside the workspace, lengths are read
from headers before decoding, and each drop is handled on its own: a failure sets that drop aside with
its reason (or logs it when even that fails), removes what it half wrote, and the batch goes on.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat
import threading
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np

from vocabd.audio import AUDIO_SUFFIXES, SAMPLE_RATE, AudioTooLong, read_audio, write_wav
from vocabd.clock import now_iso
from vocabd.corrections.store import KEPT_ID
from vocabd.inbox import ledger
from vocabd.errors import AudioError
from vocabd.files import narrow_mode, open_append, open_regular, real_folder, remove_quietly, write_bytes, write_text
from vocabd.jargon import JargonError, LeftOut, Term, parse_jargon, parse_jargon_text
from vocabd.log import get_logger
from vocabd.longform.pending import MAX_LONG_SECONDS, store_long_recording
from vocabd.manifest import MAX_SECONDS, MIN_SECONDS, transcript_limit, transcript_too_long
from vocabd.split import split_for_text
from vocabd.workspace import (INBOX_LOCK, JARGON_FILE, LONG_RECORDINGS, MY_VOICE_EVAL, MY_VOICE_TRAIN, VOICE_REF,
                              VOICE_REF_TEXT, Workspace)

log = get_logger("vocabd.inbox")

DONE, REJECTED = "done", "rejected"
TRANSCRIPT_SUFFIX = ".txt"
REASON_SUFFIX = ".reason.txt"
RECORDINGS = "recordings"
VOICE_STEMS = ("voice", "voice_ref", "voice-ref", "voice_sample", "voice-sample")
VOICE_RATE = 24_000  # the cloning backend's rate (vocabd/tts/f5_mlx.py)
VOICE_MIN_S, VOICE_MAX_S = 2.0, 30.0
MAX_TRANSCRIPT_CHARS = transcript_limit(MAX_LONG_SECONDS)  # before the audio's own length is known
MAX_TEXT_BYTES = 1024 * 1024  # a transcript or jargon list beyond this is not one
SILENCE = 1e-4
MAX_AUDIO_BYTES = 200 * 1024 * 1024  # far beyond a 30 s clip in any format; refused before decoding
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NAME_MAX = 255  # bytes in one file name (Linux, macOS)
OWNER_RW = 0o600  # copies stay readable and writable by their owner whatever the drop's bits

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
    kind: str  # jargon | recording | voice | unsupported | folder | ambiguous | link (or special) | orphan
    files: list[Path]
    problem: str = ""


@dataclass
class Outcome:
    drop: Drop
    status: str  # done | rejected | duplicate | gone (removed by someone else meanwhile) | failed (logged)
    #   | waiting (left in the inbox: the disk is full)
    message: str
    moved: list[Path] = field(default_factory=list)


class Undo:
    """What an ingest wrote so far, taken back when a later step fails (no half ingest is left behind)."""

    def __init__(self) -> None:
        self._steps: list[Callable[[], None]] = []

    def add(self, step: Callable[[], None]) -> None:
        self._steps.append(step)

    def run(self) -> None:
        for step in reversed(self._steps):
            try:
                step()
            except Exception:  # the rest is still taken back
                log.exception("inbox.undo_failed")


def shown(name: str) -> str:
    """A file name as text that can be written anywhere (bytes that are not UTF-8 shown as \\xNN)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def names(paths: Iterable[Path]) -> list[str]:
    return [shown(p.name) for p in paths]


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
    unsafe: dict[Path, str] = {}  # links and special files: never read, set aside with their group
    drops: list[Drop] = []
    for path in sorted(paths):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:  # left the inbox meanwhile
            continue
        if stat.S_ISDIR(mode):
            drops.append(Drop("folder", [path], "folders are not read; drop the files themselves into inbox/"))
            continue
        if stat.S_ISLNK(mode):
            unsafe[path] = _link_problem(path)
        elif not stat.S_ISREG(mode):
            unsafe[path] = f"{shown(path.name)} is not a regular file (a pipe, socket or device); it was not read"
        groups[group_key(path)].append(path)
    for key, files in groups.items():
        problems = [unsafe[p] for p in files if p in unsafe]
        drops.extend([Drop("link", files, "; ".join(problems))] if problems else _classify_group(key, files))
    return drops


def _link_problem(path: Path) -> str:
    try:
        target = shown(os.readlink(path))
    except OSError:
        target = "?"
    return (f"{shown(path.name)} is a symbolic link (to {target}); vocabd never reads through links in inbox/: "
            "copy the file itself into the inbox")


def _classify_group(key: str, files: list[Path]) -> list[Drop]:
    texts = [p for p in files if p.suffix.lower() == TRANSCRIPT_SUFFIX]
    audios = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    drops = [Drop("unsupported", [p], _unsupported(p)) for p in files if p not in texts and p not in audios]
    if len(texts) > 1 or (texts and len(audios) > 1):
        listed = ", ".join(names(texts + audios))
        drops.append(Drop("ambiguous", texts + audios,
                          f"{listed} share the name '{shown(key)}'; give each recording exactly one same-name .txt"))
    elif texts and audios:
        kind = "voice" if key.lower() in VOICE_STEMS else "recording"
        drops.append(Drop(kind, [audios[0], texts[0]]))
    elif texts and KEPT_ID.fullmatch(key):  # `t001-ab12cd.txt`: the fix of a kept transcript (vocabd correct)
        drops.append(Drop("correction", texts))
    elif texts:
        drops.append(Drop("jargon", texts))
    else:
        drops.extend(Drop("voice", [a]) for a in audios)
    return drops


def _unsupported(path: Path) -> str:
    kinds = " ".join(AUDIO_SUFFIXES)
    suffix = shown(path.suffix) or "(no extension)"
    return f"unsupported file type {suffix}: expected a .txt jargon list or audio ({kinds}) with an optional same-name .txt transcript"


def handle(ws: Workspace, paths: Iterable[Path], stop: threading.Event | None = None) -> list[Outcome]:
    """Classify and ingest ready inbox entries; every entry ends in done/ or rejected/. Once `stop` is set
    (the daemon is stopping) the rest of the batch stays in the inbox for the next start.

    Threads share a lock and processes (the daemon, `vocabd run --foreground`) an flock, so two
    handlers never take in the same file. Raises UnsafePath (touching nothing) when inbox/, done/ or
    rejected/ is not a real folder inside the workspace.
    """
    for folder in (ws.inbox, ws.inbox / DONE, ws.inbox / REJECTED, ws.data):
        real_folder(ws.root, folder)
    with _inbox_locked(ws):
        # Only entries directly in inbox/, by name: a path elsewhere is never read or moved.
        requested = [ws.inbox / p.name for p in paths]
        present = [p for p in requested if os.path.lexists(p)]
        drops = _orphaned(classify(present), [p for p in requested if p not in present])
        outcomes = []
        for drop in drops:
            if stop is not None and stop.is_set():
                log.info("inbox.batch_stopped", handled=len(outcomes), left=len(drops) - len(outcomes))
                break
            outcomes.append(ingest(ws, drop))
        return outcomes


@contextmanager
def _inbox_locked(ws: Workspace) -> Iterator[None]:
    with _lock, open_append(ws.data / INBOX_LOCK) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def remove_torn_copies(ws: Workspace) -> list[str]:
    """Temporary copies (vocabd.files' `.vocabd-*.part`) an ingest killed mid-write left in data/recordings/;
    taken under the inbox lock, so no ingest is writing one now. Returns what was removed."""
    real_folder(ws.root, ws.data)
    with _inbox_locked(ws):
        folder = real_folder(ws.root, ws.data / RECORDINGS)
        torn = [p for p in folder.rglob(".vocabd-*.part") if not p.is_dir()]
        for path in torn:
            remove_quietly(path)
    return [str(p.relative_to(ws.root)) for p in torn]


def _orphaned(drops: list[Drop], gone: list[Path]) -> list[Drop]:
    """A transcript whose recording left the inbox since it was seen is no jargon list: set it aside."""
    left = {group_key(p): p for p in gone if p.suffix.lower() in AUDIO_SUFFIXES}
    return [Drop("orphan", d.files, f"its recording {shown(left[group_key(d.files[0])].name)} left the inbox "
                                    "before it was read; drop the pair again")
            if d.kind == "jargon" and group_key(d.files[0]) in left else d for d in drops]


def ingest(ws: Workspace, drop: Drop) -> Outcome:
    """Handle one drop; never raises (one bad drop must not stop the batch)."""
    try:
        return _ingest(ws, drop)
    except Exception as e:  # even setting it aside failed (a full disk, a folder swapped for a link)
        log.exception("inbox.failed", kind=drop.kind, files=names(drop.files))
        return Outcome(drop, "failed", f"could not be handled ({type(e).__name__}: {e}); see vocabd.log")


def _ingest(ws: Workspace, drop: Drop) -> Outcome:
    present = [p for p in drop.files if os.path.lexists(p)]
    if not present:
        return Outcome(drop, "gone", "left the inbox before it was handled")
    if len(present) < len(drop.files):
        missing = ", ".join(names(p for p in drop.files if p not in present))
        return _set_aside(ws, Drop(drop.kind, present), "rejected",
                          f"its partner {missing} left the inbox before it was read; drop them again together")
    undo = Undo()
    try:
        message = _INGESTERS[drop.kind](ws, drop, undo)
    except (Duplicate, Rejected) as e:
        undo.run()
        return _set_aside(ws, drop, "duplicate" if isinstance(e, Duplicate) else "rejected", str(e))
    except Exception as e:  # disk full, a file deleted while read: nothing half written stays
        undo.run()
        if isinstance(e, OSError) and e.errno in NO_SPACE:  # a good drop: it waits in the inbox for space
            log.error("inbox.disk_full", kind=drop.kind, files=names(drop.files), error=str(e))
            return Outcome(drop, "waiting", f"left in the inbox: the disk is full ({e.strerror}); it is taken in "
                                            "once there is space again")
        log.exception("inbox.error", files=names(drop.files))
        gone = [p for p in drop.files if not os.path.lexists(p)]
        if gone:
            return _set_aside(ws, Drop(drop.kind, [p for p in drop.files if p not in gone]), "rejected",
                              f"{', '.join(names(gone))} disappeared while it was read; drop it again")
        return _set_aside(ws, drop, "rejected", f"could not be stored ({type(e).__name__}: {e})")
    moved = _move_group(ws, drop.files, ws.inbox / DONE)
    log.info("inbox.done", kind=drop.kind, files=names(drop.files), result=message)
    return Outcome(drop, "done", message, moved)


def _set_aside(ws: Workspace, drop: Drop, status: str, reason: str) -> Outcome:
    log.warning(f"inbox.{status}", kind=drop.kind, files=names(drop.files), reason=reason)
    if not drop.files:
        return Outcome(drop, status, reason)
    moved = _move_group(ws, drop.files, ws.inbox / REJECTED, extra_suffix=REASON_SUFFIX)
    stamp = now_iso()
    advice = ("nothing to do: its content is already in the workspace" if status == "duplicate"
              else "fix it and drop it into the inbox again")
    for original, dest in zip(drop.files, moved):
        if dest.parent != ws.inbox / REJECTED:  # it could not be moved: the log has its reason
            continue
        name = shown(original.name)
        line = reason if reason.startswith((f"{name}:", f"{name} ")) else f"{name}: {reason}"
        try:
            write_text(reason_path(dest), f"{line}\n\n({status} {stamp}; {advice})\n")
        except OSError:  # a full disk: the log keeps the reason
            log.exception("inbox.reason_not_written", file=name, reason=reason)
    return Outcome(drop, status, reason, moved)


def reason_path(dest: Path) -> Path:
    return dest.with_name(_fit(dest.name, REASON_SUFFIX))


def _fit(name: str, suffix: str) -> str:
    """`name + suffix`, the name shortened (with a hash of it) when the whole would pass NAME_MAX bytes."""
    raw = os.fsencode(name)
    if len(raw) + len(os.fsencode(suffix)) <= NAME_MAX:
        return name + suffix
    tag = "-" + hashlib.sha256(raw).hexdigest()[:8]
    keep = NAME_MAX - len(os.fsencode(suffix)) - len(tag)
    return os.fsdecode(raw[:keep]) + tag + suffix


def _move_group(ws: Workspace, paths: list[Path], folder: Path, extra_suffix: str = "") -> list[Path]:
    """Move keeping names; on a clash all files of the group get the same `.N` so pairs stay pairs.

    `folder` must be a real folder inside the workspace; a target name that exists in any form (a link
    included, and the reason file beside it) is never replaced. Returns where each file is now.
    """
    def taken(target: Path) -> bool:
        return os.path.lexists(target) or bool(extra_suffix) and os.path.lexists(
            target.with_name(_fit(target.name, extra_suffix)))

    real_folder(ws.root, folder)

    for n in range(0, 100_000):
        targets = [folder / (p.name if n == 0 else _fit(p.stem, f".{n}{p.suffix}")) for p in paths]
        if not any(taken(t) for t in targets):
            break
    moved = []
    for path, target in zip(paths, targets):
        try:
            os.rename(path, target)
            moved.append(target)
        except OSError:  # the rest of the group still moves: a transcript left alone would be a jargon list
            log.exception("inbox.move_failed", file=shown(path.name), to=str(folder))
            moved.append(path)
    return moved


# --- ingesters ---------------------------------------------------------------------------------


def _reject_only(ws: Workspace, drop: Drop, undo: Undo) -> str:
    raise Rejected(drop.problem)


def _ingest_jargon(ws: Workspace, drop: Drop, undo: Undo) -> str:
    path = drop.files[0]
    raw, mode = _read_small(path)
    left_out: list[LeftOut] = []
    try:
        parsed = parse_jargon(path, left_out)  # the synthesizer's own parser: what passes here, the chain can read
    except JargonError as e:
        where = f" (line {e.line})" if e.line else ""
        raise Rejected(f"not a usable jargon list{where}: {e.problem}") from e
    terms = given_terms(parsed)
    digest = _check_new(ws, "jargon", content_hash(raw))
    target = ws.data / JARGON_FILE
    before = _snapshot(target)
    added, changed = merge_jargon(target, terms, mode)
    undo.add(lambda: _restore(target, before))
    ledger.record(ws, "jargon", digest, [shown(path.name)], f"data/{JARGON_FILE}",
                  material=bool(added or changed), terms=len(terms), added=added)
    message = f"{len(terms)} terms, {added} new, {changed} spoken forms updated"
    if left_out:
        message += f"; {len(left_out)} left out: {_set_lines_aside(ws, path, left_out, undo)}"
    return message


def _set_lines_aside(ws: Workspace, path: Path, left_out: list[LeftOut], undo: Undo) -> str:
    """The list's unusable lines as `rejected/<stem>.left-out.txt`, their reasons beside them; the rest of the
    list is taken in. Returns where they are."""
    folder = real_folder(ws.root, ws.inbox / REJECTED)
    for n in range(100_000):
        target = folder / _fit(path.stem, ".left-out.txt" if n == 0 else f".left-out.{n}.txt")
        if not os.path.lexists(target) and not os.path.lexists(reason_path(target)):
            break
    write_text(target, "".join(item.raw + "\n" for item in left_out))
    undo.add(lambda: target.unlink(missing_ok=True))
    reasons = "\n".join(item.reason for item in left_out)
    write_text(reason_path(target), f"{shown(path.name)}: these lines were left out, the rest of the list was taken "
                                    f"in:\n{reasons}\n\n(rejected {now_iso()}; fix them and drop them again)\n")
    return f"inbox/{REJECTED}/{target.name}"


def _ingest_recording(ws: Workspace, drop: Drop, undo: Undo) -> str:
    audio_path, text_path = drop.files
    text, text_mode = read_transcript(text_path)
    with open_regular(audio_path) as f:
        samples = _load(f, audio_path, SAMPLE_RATE, MIN_SECONDS, MAX_LONG_SECONDS)
        _check_fits(text, samples, SAMPLE_RATE, text_path)
        digest = _check_new(ws, "recording", _hash_file(f))
        audio_mode = _private_mode(f)
    if len(samples) / SAMPLE_RATE > MAX_SECONDS:  # split into pieces by the chain (vocabd/longform/)
        message = store_long_recording(ws, samples, text, shown(audio_path.name), shown(group_key(audio_path)), digest,
                                       audio_mode & text_mode)
        ledger.record(ws, "recording", digest, names(drop.files), f"data/{LONG_RECORDINGS}", split="long")
        return message
    split = split_for_text(text)  # the one place the train / held-out side is chosen
    stored = ws.data / RECORDINGS / f"{digest[:16]}.wav"
    real_folder(ws.root, stored.parent)
    _write_new_wav(stored, samples, SAMPLE_RATE, audio_mode, undo)
    manifest = ws.manifest(MY_VOICE_EVAL if split == "eval" else MY_VOICE_TRAIN)
    row = {"audio": f"{RECORDINGS}/{stored.name}", "text": text, "duration": round(len(samples) / SAMPLE_RATE, 3),
           "speaker": "user", "source": "real", "id": f"{shown(group_key(audio_path))}-{digest[:8]}",
           "origin": shown(audio_path.name), "sha256": digest}
    _append_row(manifest, row, audio_mode & text_mode, undo)
    ledger.record(ws, "recording", digest, names(drop.files), f"data/{manifest.name}", split=split)
    return f"recording -> {manifest.name} ({split})"


def _ingest_voice(ws: Workspace, drop: Drop, undo: Undo) -> str:
    audio_path = drop.files[0]
    text, text_mode = read_transcript(drop.files[1]) if len(drop.files) > 1 else (None, OWNER_RW)
    with open_regular(audio_path) as f:
        samples = _load(f, audio_path, VOICE_RATE, VOICE_MIN_S, VOICE_MAX_S)
        if text is not None:
            _check_fits(text, samples, VOICE_RATE, drop.files[1])
        digest = _check_new(ws, "voice", _hash_file(f))
        audio_mode = _private_mode(f)
    ref, text_file = ws.data / VOICE_REF, ws.data / VOICE_REF_TEXT
    for path, before in ((ref, _snapshot(ref)), (text_file, _snapshot(text_file))):
        undo.add(lambda path=path, before=before: _restore(path, before))
    write_wav(ref, samples, VOICE_RATE, mode=audio_mode)
    if text is not None:
        write_text(text_file, text + "\n", mode=text_mode)
    elif os.path.lexists(text_file):
        text_file.unlink()  # it described the previous sample (whose original is kept in inbox/done/)
    ledger.record(ws, "voice", digest, names(drop.files), f"data/{VOICE_REF}", transcript=text is not None)
    return f"voice sample -> data/{VOICE_REF}" + (" + transcript" if text is not None else "")


def _ingest_correction(ws: Workspace, drop: Drop, undo: Undo) -> str:
    from vocabd.corrections.correct import apply_correction
    from vocabd.errors import VocabdError

    text, _ = read_transcript(drop.files[0])
    try:
        row = apply_correction(ws, group_key(drop.files[0]), text)
    except VocabdError as e:
        raise Rejected(str(e)) from e
    return f"correction of {row['id']} -> {row['inbox']} (a recording)"


_INGESTERS = {
    "correction": _ingest_correction,
    "jargon": _ingest_jargon, "recording": _ingest_recording, "voice": _ingest_voice,
    "unsupported": _reject_only, "folder": _reject_only, "ambiguous": _reject_only,
    "link": _reject_only, "orphan": _reject_only,
}


# --- checks --------------------------------------------------------------------------------------


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_file(f: BinaryIO) -> str:
    f.seek(0)
    return hashlib.file_digest(f, "sha256").hexdigest()


def _check_new(ws: Workspace, kind: str, digest: str) -> str:
    """Refuse content already taken in for the same role (a recording may also be the voice sample)."""
    seen = ledger.find_hash(ws, digest, kind)
    if seen is not None:
        raise Duplicate(f"same content as {', '.join(seen['files'])}, ingested {seen['ingested']}")
    return digest


def _private_mode(f: BinaryIO) -> int:
    """The drop's permission bits for its copies in data/ (never less than owner read and write)."""
    return (stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o666) | OWNER_RW


def _read_small(path: Path) -> tuple[bytes, int]:
    """A text drop's bytes (read once, without following links) and its permission bits."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_TEXT_BYTES:
            raise Rejected(f"{size} bytes is far too large for a transcript or jargon list")
        return f.read(MAX_TEXT_BYTES + 1), _private_mode(f)


def _decode_text(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Rejected(f"not UTF-8 text (byte {e.start}); save it as UTF-8") from e
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise Rejected("contains control characters; is it really a text file?")
    return text


def read_transcript(path: Path) -> tuple[str, int]:
    """The transcript's text on one line, and the file's permission bits."""
    raw, mode = _read_small(path)
    text = " ".join(_decode_text(raw).split())
    name = shown(path.name)
    if not text:
        raise Rejected(f"transcript {name} is empty")
    if len(text) > MAX_TRANSCRIPT_CHARS:
        raise Rejected(f"transcript {name} has {len(text)} characters; the transcript of the longest recording "
                       f"taken in ({MAX_LONG_SECONDS:.0f} s) has at most {MAX_TRANSCRIPT_CHARS}")
    return text, mode


def _check_fits(text: str, samples: np.ndarray, rate: int, text_path: Path) -> None:
    problem = transcript_too_long(text, len(samples) / rate)
    if problem:
        raise Rejected(f"transcript {shown(text_path.name)}: {problem}")


def _load(f: BinaryIO, path: Path, rate: int, min_s: float, max_s: float) -> np.ndarray:
    """Decode a dropped clip of `min_s`-`max_s` seconds; the length comes from the header, before decoding."""
    name = shown(path.name)
    size = os.fstat(f.fileno()).st_size
    if size > MAX_AUDIO_BYTES:
        raise Rejected(f"{name}: {size / 2**20:.0f} MiB is far too large for a clip of at most {max_s:g} s; "
                       "cut it into sentences")
    try:
        samples = read_audio(f, path, rate, max_seconds=max_s)
    except AudioTooLong as e:
        raise Rejected(_too_long(name, e.seconds, max_s, e.at_least)) from e
    except AudioError as e:
        raise Rejected(f"{name}: {e.problem}") from e
    seconds = len(samples) / rate
    if seconds < min_s:
        raise Rejected(f"{name}: {seconds:.2f} s long; expected {min_s:g}-{max_s:g} s")
    if float(np.abs(samples).max()) < SILENCE:
        raise Rejected(f"{name}: audio is silent")
    return samples


def _too_long(name: str, seconds: float, max_s: float, at_least: bool) -> str:
    """The one place a clip over `max_s` is refused (recordings up to MAX_LONG_SECONDS are split by the chain)."""
    length = f"over {max_s:g} s long" if at_least else f"{seconds:.2f} s long"
    return (f"{name}: {length}; expected at most {max_s:g} s: cut it into pieces under {max_s:g} s, "
            "each with its own transcript")


def _write_new_wav(path: Path, samples: np.ndarray, rate: int, mode: int, undo: Undo) -> None:
    existed = os.path.lexists(path)
    write_wav(path, samples, rate, mode=mode)
    if not existed:
        undo.add(lambda: path.unlink(missing_ok=True))


def _append_row(manifest: Path, row: dict, mode: int, undo: Undo) -> None:
    """Append one JSONL row unless a row for this content is already there (a crash between steps)."""
    with open_append(manifest, mode) as f:
        narrow_mode(f, mode)
        if f'"sha256": "{row["sha256"]}"' in manifest.read_text(encoding="utf-8", errors="replace"):
            return
        size = os.fstat(f.fileno()).st_size
        undo.add(lambda: os.truncate(manifest, size))
        f.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def _snapshot(path: Path) -> tuple[bytes, int] | None:
    """A workspace file's bytes and mode before an ingest rewrites it (None: it did not exist)."""
    try:
        with open_regular(path) as f:
            return f.read(), stat.S_IMODE(os.fstat(f.fileno()).st_mode)
    except FileNotFoundError:
        return None


def _restore(path: Path, before: tuple[bytes, int] | None) -> None:
    if before is None:
        path.unlink(missing_ok=True)
    else:
        write_bytes(path, before[0], before[1])


# --- jargon lists --------------------------------------------------------------------------------

def given_terms(terms: list[Term]) -> list[tuple[str, str | None]]:
    """(written, spoken as the user wrote it or None): the merged list keeps only spoken forms a user wrote;
    derived ones stay derived at synthesis time."""
    return [(t.written, t.spoken if t.given else None) for t in terms]


def merge_jargon(path: Path, terms: list[tuple[str, str | None]], mode: int | None = None) -> tuple[int, int]:
    """Merge into the workspace list; returns (terms added, spoken forms changed).

    The list keeps the most private permission bits of the drops merged into it.
    """
    current: dict[str, str | None] = {}
    before = _snapshot(path)
    if before is not None:
        current = dict(given_terms(parse_jargon_text(before[0].decode("utf-8", errors="replace"), path,
                                                     allow_empty=True)))
        mode = before[1] if mode is None else before[1] & mode
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
    write_text(path, "\n".join(lines) + "\n", mode=mode)
    return added, changed
