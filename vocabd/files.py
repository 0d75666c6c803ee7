"""Writing files safely: atomically (readers never see half a file) and never through a symbolic link.

Everything the daemon writes goes through here. A temporary file is created with `O_EXCL | O_NOFOLLOW`
under a random name and renamed over the target; a rename replaces a link planted at the target
instead of writing through it, so no file outside the workspace can be reached that way.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any, BinaryIO

from vocabd.errors import VocabdError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DEFAULT_MODE = 0o666  # narrowed by the umask, like any new file


class UnsafePath(VocabdError):
    """A path the daemon refuses to use: a link, or a folder that is not a real folder inside the workspace."""


def temp_name(path: Path) -> Path:
    """A short random sibling name (the target's own name may already be near the 255-byte limit)."""
    return path.with_name(f".vocabd-{secrets.token_hex(6)}.part")


def write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write via a fresh temporary file, then rename over `path`; `mode` sets exact permission bits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC, DEFAULT_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


def write_text(path: Path, text: str, mode: int | None = None) -> None:
    write_bytes(path, text.encode("utf-8"), mode)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file (a manifest, a log, an index), in order; [] when absent. A line
    that is not a whole object (a write cut short by a kill) is skipped: each line stands alone."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class CorruptFile(VocabdError):
    """A JSON file that is torn, unreadable or not an object: reported, never read as absent or empty."""


def read_json(path: Path) -> dict[str, Any] | None:
    """The one reader of vocabd's JSON files: None when the file is absent; CorruptFile (naming the file)
    when it is torn, unreadable or not a JSON object. A caller that can make the file again (a cache)
    catches CorruptFile and says so; state is never guessed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CorruptFile(f"{path} is unreadable ({e})") from None
    if not isinstance(data, dict):
        raise CorruptFile(f"{path} holds a {type(data).__name__}, not an object")
    return data


def open_append(path: Path, mode: int | None = None) -> BinaryIO:
    """Open for appending, refusing a link at `path`; a new file gets `mode` (else umask defaults)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW | CLOEXEC,
                     DEFAULT_MODE if mode is None else mode)
    except OSError as e:
        if path.is_symlink():
            raise UnsafePath(f"{path} is a symbolic link; vocabd does not write through links") from e
        raise
    f = os.fdopen(fd, "ab")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise UnsafePath(f"{path} is not a regular file")
    return f


def open_regular(path: Path) -> BinaryIO:
    """Open an existing file for reading without following a link; refuses anything but a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW | CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        if path.is_symlink():
            raise UnsafePath(f"{path.name} is a symbolic link; vocabd does not follow links") from e
        raise
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise UnsafePath(f"{path.name} is not a regular file")
    return f


def narrow_mode(f: BinaryIO, mode: int) -> None:
    """Take away permission bits `mode` lacks (a private drop makes the shared file it joins private)."""
    current = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
    if current & ~mode:
        os.fchmod(f.fileno(), current & mode)


def real_folder(root: Path, folder: Path) -> Path:
    """Make sure `folder` is a real folder inside `root`, every step below `root` a folder and no link.

    Created when missing. Raises UnsafePath when a step is a link, a file, or leads out of `root`.
    """
    root = Path(root)
    rel = Path(os.path.normpath(folder)).relative_to(os.path.normpath(root))
    if ".." in rel.parts:
        raise UnsafePath(f"{folder} is not inside {root}")
    current = root
    for part in rel.parts:
        current = current / part
        try:
            os.mkdir(current)
        except FileExistsError:
            pass
        st = os.lstat(current)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{current} is a symbolic link; it must be a real folder inside {root} "
                             "(vocabd never moves or writes files through links)")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{current} is not a folder; move it away so vocabd can create the folder")
    return current


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
