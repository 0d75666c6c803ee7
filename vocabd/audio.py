"""Reading and writing audio: everything inside vocabd is float32 mono at 16 kHz."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from vocabd.errors import AudioError

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = (".wav", ".flac", ".m4a", ".mp3", ".ogg")


def load_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode, down-mix and resample; raises AudioError naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        data, rate = _decode_with_ffmpeg(path, e)
    if data.shape[0] == 0:
        raise AudioError(path, "audio has no samples")
    audio = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate)
    if not np.isfinite(audio).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _decode_with_ffmpeg(path: Path, cause: Exception) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read (m4a) go through ffmpeg when it is installed."""
    if shutil.which("ffmpeg") is None:
        raise AudioError(path, f"unreadable audio ({cause}); install ffmpeg for .m4a/.mp3") from cause
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    result = subprocess.run(cmd, capture_output=True)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["unknown"]
        raise AudioError(path, f"unreadable audio: {reason[0]}") from cause
    return np.frombuffer(result.stdout, dtype=np.float32).reshape(-1, 1), SAMPLE_RATE


def audio_duration(path: Path) -> float:
    """Duration in seconds, from the header when possible."""
    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return len(load_audio(path)) / SAMPLE_RATE


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM via a temporary name, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    tmp.replace(path)
