"""Real recorded speech that registry packages ship, cut into a small yardstick of real voices.

Training on synthetic speech improves a synthetic yardstick, so it cannot see an adapter that hurts real
voices; this part can. Its sources, each used when installed and unchanged (checked by sha256):

- the `moonshine-voice` wheel (a dependency of vocabd, MIT): its LibriVox reading of the opening of A Tale of
  Two Cities (public domain), cut at its pauses into the pieces `real_speech.json` beside this file lists;
- Debian's `pocketsphinx-testdata` (BSD; `./dev` installs it): five LibriVox sentences of Sense and
  Sensibility (public domain) and five card names, with the package's own transcripts.

Small (about 1.3 minutes and 3 speakers with both installed): good at catching a clear regression on real voices,
not a fine measure, so the gate weighs it with its bootstrap interval.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocabd.audio import SAMPLE_RATE, write_wav
from vocabd.log import get_logger
from vocabd.manifest import MAX_SECONDS, MIN_SECONDS, Clip, write_manifest

log = get_logger(__name__)

ANNOTATION = Path(__file__).resolve().parent / "real_speech.json"
POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")
POCKETSPHINX_SETS = {"librivox": "librivox-sense-and-sensibility", "cards": "pocketsphinx-cards"}
MAX_FILE_BYTES = 20_000_000
_TRANSCRIPT_LINE = re.compile(r"^<s>\s*(?P<text>.*?)\s*</s>\s*\((?P<id>[\w.-]+)\)\s*$")


@dataclass(frozen=True)
class Piece:
    """One clip to cut: which file, which span (seconds; end 0 = to the end), what is said, who says it."""
    source: str
    path: Path
    start: float
    end: float
    text: str
    speaker: str


def available_pieces(pocketsphinx: Path | None = None) -> list[Piece]:
    """Every piece whose source is installed and unchanged."""
    return _annotated_pieces() + _pocketsphinx_pieces(pocketsphinx or POCKETSPHINX_DATA)


def pieces_key(pieces: list[Piece]) -> str:
    """Names the cache folder: the pieces and the bytes of the files they come from."""
    digest = hashlib.sha256()
    for path in sorted({p.path for p in pieces}):
        digest.update(_sha256(path).encode())
    for p in pieces:
        digest.update(f"|{p.source}|{p.path.name}|{p.start}|{p.end}|{p.text}|{p.speaker}".encode())
    return digest.hexdigest()[:16]


def build_real_yardstick(dest: Path, pieces: list[Piece]) -> list[Clip]:
    """Cut, resample and write every piece into dest/clips; dest/real_yardstick.jsonl lists them."""
    clips_dir = dest / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for piece in pieces:
        audio = _read_16k(piece.path)
        span = audio[int(piece.start * SAMPLE_RATE): int(piece.end * SAMPLE_RATE) if piece.end else None]
        seconds = len(span) / SAMPLE_RATE
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            log.warning("real_piece_skipped", file=str(piece.path), start=piece.start, seconds=round(seconds, 2))
            continue
        name = hashlib.sha256(f"{piece.path.name}|{piece.start}|{piece.end}".encode()).hexdigest()[:16]
        path = clips_dir / f"{name}.wav"
        write_wav(path, span, SAMPLE_RATE)
        clips.append(Clip(audio=path, text=piece.text, duration=round(seconds, 3), speaker=piece.speaker,
                          source="general-real", id=name, extra={"from": piece.source}))
    write_manifest(dest / "real_yardstick.jsonl", clips)
    log.info("real_yardstick_built", clips=len(clips), speakers=len({c.speaker for c in clips}))
    return clips


def _annotated_pieces() -> list[Piece]:
    try:
        entries = json.loads(ANNOTATION.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        log.warning("real_speech_annotation_unreadable", file=str(ANNOTATION), error=str(e))
        return []
    pieces = []
    for entry in entries:
        folder = _package_folder(entry["package"])
        path = folder / entry["file"] if folder else None
        if path is None or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            continue
        if _sha256(path) != entry["sha256"]:
            log.warning("real_speech_changed", file=str(path), reason="its sha256 is not the one annotated")
            continue
        pieces += [Piece(entry["package"], path, float(p["start"]), float(p["end"]), p["text"], entry["speaker"])
                   for p in entry["pieces"]]
    return pieces


def _pocketsphinx_pieces(root: Path) -> list[Piece]:
    pieces = []
    for folder, speaker in POCKETSPHINX_SETS.items():
        listing = root / folder / ("cards.transcription" if folder == "cards" else "transcription")
        if not listing.is_file() or listing.stat().st_size > 100_000:
            continue
        for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
            match = _TRANSCRIPT_LINE.match(line.strip())
            wav = root / folder / f"{match['id']}.wav" if match else None
            if wav is not None and wav.is_file() and not wav.is_symlink() and wav.stat().st_size <= MAX_FILE_BYTES:
                pieces.append(Piece("pocketsphinx-testdata", wav, 0.0, 0.0, _sentence(match["text"]), speaker))
    return pieces


def _sentence(words: str) -> str:
    """The package's lower-case word string as a sentence: capital first letter, full stop."""
    text = " ".join(words.split())
    return text[:1].upper() + text[1:] + "."


def _package_folder(name: str) -> Path | None:
    """An installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_16k(path: Path) -> np.ndarray:
    import soundfile as sf
    import soxr

    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    return mono if rate == SAMPLE_RATE else soxr.resample(mono, rate, SAMPLE_RATE).astype(np.float32)
