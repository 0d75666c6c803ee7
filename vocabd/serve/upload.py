"""An uploaded audio file: kept in a private temporary file, its duration read from the header first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from vocabd.audio import load_audio


class UploadError(ValueError):
    """The upload cannot be transcribed; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def header_duration(path: Path) -> float | None:
    """Seconds of audio the file's header declares (libsndfile, else ffprobe); None when unknown."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate if info.samplerate else None
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    if shutil.which("ffprobe") is None:
        return None
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                          capture_output=True, text=True, timeout=30, check=False)
    try:
        return float(json.loads(done.stdout)["format"]["duration"])
    except (ValueError, KeyError, TypeError):
        return None


def decode_upload(data: bytes, filename: str, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 audio of the upload, refusing empty, unreadable or too long audio before decoding."""
    if not data:
        raise UploadError(400, f"{filename}: the file is empty")
    suffix = Path(filename).suffix.lower()[:8] if Path(filename).suffix.isascii() else ""
    with tempfile.TemporaryDirectory(prefix="vocabd-serve-") as folder:
        path = Path(folder) / f"upload{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        seconds = header_duration(path)
        if seconds is None:
            raise UploadError(400, f"{filename}: not a readable audio file (no duration in its header)")
        if seconds > max_seconds:
            raise UploadError(413, f"{filename}: {seconds:.1f} s of audio; this server takes at most "
                                   f"{max_seconds:g} s per request")
        try:
            audio = load_audio(path)
        except Exception as e:  # AudioError and whatever a decoder raises on a crafted file
            raise UploadError(400, f"{filename}: cannot decode the audio ({e})") from e
    if len(audio) > (max_seconds + 1) * 16000:  # the header understated the length
        raise UploadError(413, f"{filename}: {len(audio) / 16000:.1f} s of audio; this server takes at most "
                               f"{max_seconds:g} s per request")
    if len(audio) < 1600:
        raise UploadError(400, f"{filename}: {len(audio) / 16000:.2f} s of audio is too short (at least 0.1 s)")
    return audio
