"""Manifests: JSONL, one clip a line (docs/training.md, 'Manifests'). Validation reports every bad row."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from vocabd.audio import SAMPLE_RATE, AudioTooLong, load_audio
from vocabd.errors import AudioError, VocabdError

MIN_SECONDS = 0.1
MAX_SECONDS = 30.0
MAX_CHARS_PER_SECOND = 30  # fast speech is about 20 characters a second, spaces included
MIN_TEXT_LIMIT = 100  # characters a transcript of a short clip may have whatever its length


def transcript_limit(seconds: float) -> int:
    """The most characters a transcript of `seconds` of audio may have: more cannot be what was said."""
    return max(MIN_TEXT_LIMIT, int(MAX_CHARS_PER_SECOND * seconds))


def transcript_too_long(text: str, seconds: float) -> str | None:
    """Why `text` cannot be the transcript of `seconds` of audio, or None when it can."""
    if len(text) <= transcript_limit(seconds):
        return None
    return (f"{len(text)} characters for {seconds:.1f} s of audio; a transcript has at most "
            f"{MAX_CHARS_PER_SECOND} characters per second of its audio ({transcript_limit(seconds)} here)")


@dataclass
class Clip:
    audio: Path  # absolute
    text: str
    duration: float = 0.0
    speaker: str = ""
    source: str = "real"  # real | synthetic | replay
    id: str = ""
    extra: dict = field(default_factory=dict)  # other keys, kept on write


@dataclass(frozen=True)
class Problem:
    manifest: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.manifest}:{self.line}: {self.message}"


class ManifestError(VocabdError):
    def __init__(self, manifest: Path, problems: list[Problem]):
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{manifest}: {len(problems)} bad row(s):\n  {shown}{more}")
        self.manifest, self.problems = manifest, problems


def read_manifest(
    path: Path,
    root: Path | None = None,
    allow_outside: bool = False,
    check_audio: bool = True,
) -> tuple[list[Clip], list[Problem]]:
    """Parse and validate; returns the good clips and one Problem per bad row (nothing dropped silently).

    `root` is the folder audio must stay inside (default: the manifest's folder).
    `check_audio` decodes each file to check it is readable, non-empty and of sane length.
    """
    path = _located(path)
    if not path.is_file():
        raise VocabdError(f"{path}: manifest not found")
    root = (root or path.parent).resolve()
    if path.is_symlink() and not allow_outside and not path.resolve().is_relative_to(root):
        raise VocabdError(f"{path}: the manifest is a symbolic link to {path.resolve()}, outside {root}; vocabd "
                          "does not follow it (allow it with allow_outside)")
    clips: list[Clip] = []
    problems: list[Problem] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            clips.append(_parse_row(line, path.resolve().parent, root, allow_outside, check_audio))
        except _RowError as e:
            problems.append(Problem(path, number, str(e)))
    return clips, problems


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise VocabdError(f"{path}:{line}: not UTF-8 text (byte {e.start}); a manifest is UTF-8 JSONL, "
                          "one clip a line") from None


def _located(path: Path) -> Path:
    """The manifest where it is named: its folder resolved, the file itself not (a link is not followed, so it
    cannot move the folder its audio may come from)."""
    path = Path(path).absolute()
    return path.parent.resolve() / path.name


def audio_root(manifest: Path, workspace: Path | None) -> Path | None:
    """The folder a manifest's audio must stay inside: the workspace holding it, else its own folder (None)."""
    if workspace is not None and _located(manifest).is_relative_to(Path(workspace).resolve()):
        return Path(workspace).resolve()
    return None


def load_manifest(path: Path, root: Path | None = None, allow_outside: bool = False, check_audio: bool = True) -> list[Clip]:
    """Like read_manifest, but any bad row is an error listing all of them."""
    clips, problems = read_manifest(path, root, allow_outside, check_audio)
    if problems:
        raise ManifestError(Path(path), problems)
    return clips


class _RowError(Exception):
    pass


def _parse_row(line: str, base: Path, root: Path, allow_outside: bool, check_audio: bool) -> Clip:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise _RowError(f"not valid JSON ({e.msg})") from e
    if not isinstance(row, dict):
        raise _RowError("row is not a JSON object")
    raw_audio = row.pop("audio", None) or row.pop("audio_filepath", None)
    if not isinstance(raw_audio, str) or not raw_audio:
        raise _RowError("missing 'audio' (or 'audio_filepath')")
    text = row.pop("text", None)
    if not isinstance(text, str) or not text.strip():
        raise _RowError(f"{raw_audio}: empty or missing 'text'")
    audio = Path(os.path.normpath(base / raw_audio))
    if not allow_outside and not audio.resolve().is_relative_to(root):  # resolved: a link may lead out
        how = "through a symbolic link " if audio.is_relative_to(root) else ""
        raise _RowError(f"{raw_audio}: path leaves {root} {how}(allow it with allow_outside)")
    duration = row.pop("duration", None)
    if check_audio:
        duration = _check_audio(audio, raw_audio)
    elif not isinstance(duration, (int, float)):
        duration = 0.0
    return Clip(
        audio=audio,
        text=text.strip(),
        duration=float(duration),
        speaker=str(row.pop("speaker", "")),
        source=str(row.pop("source", "real")),
        id=str(row.pop("id", audio.stem)),
        extra=row,
    )


def _check_audio(audio: Path, raw: str) -> float:
    try:
        samples = load_audio(audio, max_seconds=MAX_SECONDS)  # the length from the header, before decoding
    except AudioTooLong as e:
        shown = f"over {MAX_SECONDS:g}" if e.at_least else f"{e.seconds:.2f}"
        raise _RowError(f"{raw}: duration {shown} s is outside {MIN_SECONDS}-{MAX_SECONDS} s") from e
    except AudioError as e:
        raise _RowError(f"{raw}: {e.problem}") from e
    seconds = len(samples) / SAMPLE_RATE
    if seconds < MIN_SECONDS or seconds > MAX_SECONDS:
        raise _RowError(f"{raw}: duration {seconds:.2f} s is outside {MIN_SECONDS}-{MAX_SECONDS} s")
    if float(abs(samples).max()) < 1e-4:
        raise _RowError(f"{raw}: audio is silent")
    return round(seconds, 3)


def write_manifest(path: Path, clips: Iterable[Clip]) -> int:
    """Write atomically; audio paths inside the manifest's folder tree are stored relative to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    lines = []
    for clip in clips:
        audio = Path(clip.audio)
        rel = os.path.relpath(audio, base) if audio.is_absolute() else str(audio)
        stored = rel if not rel.startswith("..") or _same_tree(audio, base) else str(audio)
        row = {"audio": stored, "text": clip.text, "duration": clip.duration, "speaker": clip.speaker,
               "source": clip.source, "id": clip.id, **clip.extra}
        lines.append(json.dumps(row, ensure_ascii=False))
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)
    return len(lines)


def _same_tree(audio: Path, base: Path) -> bool:
    """A sibling folder of the manifest's (e.g. data/ -> inbox/done/) stays relative."""
    return audio.resolve().is_relative_to(base.parent)


def has_rows(path: Path) -> bool:
    """A manifest that exists and holds at least one non-blank line."""
    return path.is_file() and any(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
