"""Watch `inbox/` and hand over entries once they are complete.

Files appear before they are fully written and editors save through temporary names, so an entry is
handed over only when (a) its size and mtime held still for `debounce` seconds, (b) no event touched it
for as long, (c) no writer still has it open (inotify open/close events, Linux only; elsewhere (a) and
(b) carry it), (d) a WAV or FLAC holds as much audio as its header declares (a copy in progress or a
truncated file waits up to `incomplete_hold` seconds, then goes to the inbox rules, which refuse it)
and (e) every entry sharing its name (a recording and its transcript) is ready too.
Entries are looked at with `lstat`: a link (dangling or not) is handed over like any entry, and the
inbox rules set it aside unread.
A lone `.txt` or audio file waits `pair_wait` seconds: copying a transcript and its (larger) recording
can take a while, and a transcript taken alone would be read as a jargon list.
Moves into the inbox count as creations; a periodic rescan catches anything the OS did not report.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from watchdog.events import (
    FileClosedEvent, FileClosedNoWriteEvent, FileDeletedEvent, FileOpenedEvent, FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from vocabd.audio import AUDIO_SUFFIXES, declared_length
from vocabd.inbox.drops import DONE, REJECTED, TRANSCRIPT_SUFFIX, group_key, inbox_entries, is_ignored, shown
from vocabd.errors import VocabdError
from vocabd.files import UnsafePath, open_regular, real_folder
from vocabd.log import get_logger
from vocabd.timing import Timing
from vocabd.workspace import Workspace

log = get_logger("vocabd.watcher")

GONE = -1.0
DECLARING = (".wav", ".flac")  # formats whose header says how long they are


def is_pairable(path: Path) -> bool:
    return path.suffix.lower() in (TRANSCRIPT_SUFFIX, *AUDIO_SUFFIXES)


@dataclass
class _Seen:
    signature: tuple[int, int] | None = None  # (size, mtime_ns)
    stable_since: float = 0.0
    last_event: float = 0.0
    opened: int = 0  # open-for-write count from inotify
    opened_since: float = field(default=0.0)
    declared: tuple[tuple[int, int], str] | None = None  # (signature, declared_length state) last seen


class InboxWatcher(FileSystemEventHandler):
    def __init__(self, ws: Workspace, on_ready: Callable[[list[Path]], None], timing: Timing):
        self.ws, self.on_ready, self.timing = ws, on_ready, timing
        self.inbox = ws.inbox.resolve()
        self._seen: dict[Path, _Seen] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer = Observer()
        self._thread = threading.Thread(target=self._run, name="inbox-debounce", daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        try:
            for folder in (self.ws.inbox, self.ws.inbox / DONE, self.ws.inbox / REJECTED):
                real_folder(self.ws.root, folder)
        except UnsafePath as e:
            raise VocabdError(f"cannot watch the inbox: {e}") from e
        try:
            self._observer.schedule(self, str(self.inbox), recursive=False)
            self._observer.start()
        except OSError as e:  # e.g. the inotify watch limit is reached: poll the folder instead
            log.warning("watcher.polling", reason=str(e))
            self._observer = PollingObserver(timeout=max(1.0, self.timing.debounce))
            self._observer.schedule(self, str(self.inbox), recursive=False)
            self._observer.start()
        self.rescan()
        self._thread.start()
        log.info("watcher.start", inbox=str(self.inbox))

    def stop(self) -> None:
        self._stop.set()
        self._observer.stop()
        self._observer.join(timeout=5)
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def busy(self) -> bool:
        """Entries are waiting to become complete (the chain should not start yet)."""
        with self._lock:
            return bool(self._seen)

    # --- events ------------------------------------------------------------------------------------

    def on_any_event(self, event: FileSystemEvent) -> None:
        raw = getattr(event, "dest_path", "") or event.src_path
        path = Path(os.fsdecode(raw))  # a name that is not UTF-8 stays a name (surrogate escapes)
        if path.parent != self.inbox or is_ignored(path.name):
            return
        now = time.monotonic()
        with self._lock:
            if isinstance(event, FileDeletedEvent) or event.event_type == "moved" and Path(event.src_path) != path:
                self._seen.pop(Path(event.src_path), None)
            if isinstance(event, FileDeletedEvent):
                return
            seen = self._seen.setdefault(path, _Seen(stable_since=now))
            seen.last_event = now
            if isinstance(event, FileOpenedEvent):
                seen.opened += 1
                seen.opened_since = seen.opened_since or now
            elif isinstance(event, (FileClosedEvent, FileClosedNoWriteEvent)):
                seen.opened = max(0, seen.opened - 1)
                seen.opened_since = 0.0 if seen.opened == 0 else seen.opened_since

    def rescan(self) -> None:
        now = time.monotonic()
        with self._lock:
            for path in inbox_entries(self.ws):  # by name: resolving would follow a link out of the inbox
                self._seen.setdefault(self.inbox / path.name, _Seen(stable_since=now, last_event=now))

    # --- readiness ---------------------------------------------------------------------------------

    def ready(self, now: float | None = None) -> list[Path]:
        """Entries complete now, whole same-name groups only."""
        now = time.monotonic() if now is None else now
        groups: dict[str, list[tuple[Path, float | None]]] = defaultdict(list)
        with self._lock:
            for path in list(self._seen):
                quiet = self._entry_quiet(path, self._seen[path], now)
                if quiet == GONE:
                    del self._seen[path]
                else:
                    groups[group_key(path)].append((path, quiet))
        ready: list[Path] = []
        for members in groups.values():
            alone = len(members) == 1 and is_pairable(members[0][0])
            wait = max(self.timing.debounce, self.timing.pair_wait) if alone else self.timing.debounce
            if all(quiet is not None and quiet >= wait and self._complete(path, quiet) for path, quiet in members):
                ready += [path for path, _ in members]
        return sorted(ready)

    def _complete(self, path: Path, quiet: float) -> bool:
        """A WAV/FLAC holds what its header declares; one that does not waits (`incomplete_hold` at most)."""
        if path.suffix.lower() not in DECLARING or quiet >= self.timing.incomplete_hold:
            return True
        with self._lock:
            seen = self._seen.get(path)
            if seen is None or seen.signature is None:
                return True
            if seen.declared is None or seen.declared[0] != seen.signature:
                seen.declared = (seen.signature, self._declared_state(path))
                if seen.declared[1] != "complete":
                    log.info("inbox.waiting_incomplete", file=shown(path.name), header=seen.declared[1])
            return seen.declared[1] == "complete"

    @staticmethod
    def _declared_state(path: Path) -> str:
        try:
            with open_regular(path) as f:
                return declared_length(f).state
        except (OSError, VocabdError):  # a link or a vanished file: the inbox rules deal with it
            return "complete"

    def _entry_quiet(self, path: Path, seen: _Seen, now: float) -> float | None:
        """Seconds the entry has been still and unwritten; None while a writer holds it, GONE when it left."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return GONE
        signature = (st.st_size, st.st_mtime_ns)
        if signature != seen.signature:
            seen.signature, seen.stable_since = signature, now
        if seen.opened > 0 and now - seen.opened_since < self.timing.open_hold:
            return None
        return min(now - seen.stable_since, now - seen.last_event)

    def _forget(self, paths: list[Path]) -> None:
        """Handled entries left the inbox; one that is still there (a failed move) returns at the next rescan."""
        with self._lock:
            for path in paths:
                self._seen.pop(path, None)

    def _run(self) -> None:
        last_rescan = time.monotonic()
        while not self._stop.wait(self.timing.tick):
            if time.monotonic() - last_rescan >= self.timing.rescan:
                self.rescan()
                last_rescan = time.monotonic()
            ready = self.ready()
            if not ready:
                continue
            try:
                self.on_ready(ready)
            except Exception:
                log.exception("watcher.handler_failed", files=[shown(p.name) for p in ready])
            self._forget(ready)
