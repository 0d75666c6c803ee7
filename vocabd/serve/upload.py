"""An uploaded audio file: kept in a private temporary file and read by vocabd.audio, which takes the duration
from the header before decoding and reads only the formats vocabd claims (no playlists)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from vocabd.audio import SAMPLE_RATE, AudioTooLong, read_audio
from vocabd.errors import AudioError


class UploadError(ValueError):
    """The upload cannot be transcribed; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes | memoryview, filename: str, max_seconds: float) -> np.ndarray:
    """16 kHz mono float32 audio of the upload, refusing empty, unreadable or too long audio before decoding."""
    if not len(data):
        raise UploadError(400, f"{filename}: the file is empty")
    suffix = Path(filename).suffix.lower()[:8] if Path(filename).suffix.isascii() else ""
    with tempfile.TemporaryDirectory(prefix="vocabd-serve-") as folder:
        path = Path(folder) / f"upload{suffix}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w+b") as f:
            f.write(data)
            f.flush()
            try:
                audio = read_audio(f, path, max_seconds=max_seconds)
            except AudioTooLong as e:
                raise UploadError(413, f"{filename}: {'over ' if e.at_least else ''}{e.seconds:.1f} s of audio; "
                                       f"this server takes at most {max_seconds:g} s per request") from e
            except AudioError as e:
                raise UploadError(400, f"{filename}: not a readable audio file ({e.problem})") from e
            except Exception as e:  # whatever a decoder raises on a crafted file
                raise UploadError(400, f"{filename}: cannot decode the audio ({e})") from e
    if len(audio) < SAMPLE_RATE // 10:
        raise UploadError(400, f"{filename}: {len(audio) / SAMPLE_RATE:.2f} s of audio is too short (at least 0.1 s)")
    return audio
