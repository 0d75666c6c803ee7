"""Reading and writing audio: everything inside vocabd is float32 mono at 16 kHz.

Nothing is decoded blindly: the length is read from the header first (libsndfile, else ffprobe) and a
file longer than the caller allows is refused before a sample is decoded; decoding itself is capped
too, so a header that lies cannot make it grow. WAV and FLAC declare their length, which tells a
complete file from one still being copied or cut short (`declared_length`).

ffprobe and ffmpeg read only the one open file: the `file` protocol and the demuxers of the formats vocabd
claims (`FFMPEG_FORMATS`), none of which opens another file. Playlists (HLS, ffconcat) and other containers
that refer to further files would otherwise read any file the user can, named by the drop.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from vocabd.errors import AudioError
from vocabd.files import write_bytes

SAMPLE_RATE = 16_000
AUDIO_SUFFIXES = (".wav", ".flac", ".m4a", ".mp3", ".ogg")
_SF_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError)
_UNSET_SIZES = (0, 0xFFFFFFFF)  # placeholders streaming writers put in a WAV header until they finish
FFMPEG_FORMATS = "wav,flac,mp3,ogg,mov"  # demuxer names; "mov" is MP4/M4A (external data references stay off)
_FFMPEG_INPUT = ["-protocol_whitelist", "file", "-format_whitelist", FFMPEG_FORMATS]
_NOT_WHITELISTED = re.compile(r"\[([\w,]+) @ [^]]*\] Format not on whitelist")


class AudioTooLong(AudioError):
    def __init__(self, path: Path, seconds: float, limit: float, at_least: bool = False):
        length = f"over {limit:g} s long" if at_least else f"{seconds:.2f} s long (from its header)"
        super().__init__(path, f"{length}; at most {limit:g} s is read")
        self.seconds, self.limit, self.at_least = seconds, limit, at_least


@dataclass(frozen=True)
class Declared:
    """What a WAV or FLAC header says about the file's length, checked against the file itself."""

    state: str  # complete | short (declares more than the file holds) | unknown (length not yet written)
    detail: str = ""


def declared_length(f: BinaryIO) -> Declared:
    """Compare the length a WAV/FLAC header declares with the file; other formats count as complete."""
    f.seek(0)
    head = f.read(12)
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return _wav_declared(f, head[:4] == b"RF64")
    if head[:4] == b"fLaC":
        return _flac_declared(f)
    return Declared("complete")


def _wav_declared(f: BinaryIO, rf64: bool) -> Declared:
    size = os.fstat(f.fileno()).st_size
    f.seek(12)
    data_size64 = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return Declared("short", "the header ends before the audio data begins")
        name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        start = f.tell()
        if name == b"ds64" and rf64:
            body = f.read(24)
            data_size64 = struct.unpack("<Q", body[8:16])[0] if len(body) == 24 else None
        if name == b"data":
            declared = data_size64 if rf64 and length == 0xFFFFFFFF and data_size64 else length
            present = size - start
            if declared in _UNSET_SIZES and present > 0:
                return Declared("unknown", "its header does not give the audio's length yet")
            if declared > present:
                return Declared("short", f"its header declares {declared} bytes of audio, the file holds "
                                         f"{present}: still being written, or cut short")
            return Declared("complete")
        f.seek(start + length + (length & 1))
        if f.tell() > size:
            return Declared("short", "the header ends before the audio data begins")


def _flac_declared(f: BinaryIO) -> Declared:
    f.seek(4)
    block = f.read(4 + 34)
    if len(block) < 38 or block[0] & 0x7F != 0:
        return Declared("short", "no complete FLAC stream header")
    total = int.from_bytes(block[4 + 13:4 + 18], "big") & 0xFFFFFFFFF  # 36 bits: total samples
    if total == 0:
        return Declared("unknown", "its header does not give the audio's length yet")
    f.seek(0)
    try:  # libFLAC seeks by bisection over a few frames: cheap, and fails when the last frames are missing
        with sf.SoundFile(f) as snd:
            snd.seek(snd.frames - 1)
            if len(snd.read(1)) != 1:
                raise RuntimeError("no last sample")
    except _SF_ERRORS:
        return Declared("short", f"its header declares {total} samples, the file ends before the last one: "
                                 "still being written, or cut short")
    return Declared("complete")


def header_seconds(f: BinaryIO, path: Path) -> float:
    """The duration as the header gives it, without decoding the audio."""
    f.seek(0)
    try:
        info = sf.info(f)
        if info.samplerate > 0 and info.frames > 0:
            return info.frames / info.samplerate
    except _SF_ERRORS:
        pass
    if shutil.which("ffprobe") is None:
        raise AudioError(path, "cannot read its length (install ffmpeg for .m4a/.mp3)")
    cmd = ["ffprobe", "-v", "error", *_FFMPEG_INPUT, "-show_entries", "format=duration",
           "-of", "default=nw=1:nk=1", _fd_path(f)]
    result = _run_on(f, path, cmd, timeout=60)
    try:
        return float(result.stdout.decode().strip().splitlines()[0])
    except (ValueError, IndexError):
        raise AudioError(path, _ffmpeg_problem(result, "no duration in its header")) from None


def load_audio(path: Path, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Decode, down-mix and resample; raises AudioError naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    with open(path, "rb") as f:
        return read_audio(f, path, sample_rate, max_seconds)


def read_audio(f: BinaryIO, path: Path, sample_rate: int = SAMPLE_RATE,
               max_seconds: float | None = None) -> np.ndarray:
    """Like load_audio, from an open file (the inbox opens without following links).

    With `max_seconds`, a longer file is refused (AudioTooLong) from its header, before decoding.
    """
    if os.fstat(f.fileno()).st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    declared = declared_length(f)
    if declared.state == "short":
        raise AudioError(path, f"incomplete audio: {declared.detail}")
    limit = None
    if max_seconds is not None:
        seconds = header_seconds(f, path)
        if seconds > max_seconds:
            raise AudioTooLong(path, seconds, max_seconds)
        limit = max_seconds + 1.0  # the header may lie: never decode much more than allowed
    data, rate = _decode(f, path, limit)
    if data.shape[0] == 0:
        raise AudioError(path, "audio has no samples")
    if limit is not None and data.shape[0] / rate > max_seconds:
        raise AudioTooLong(path, data.shape[0] / rate, max_seconds, at_least=True)
    audio = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate)
    if not np.isfinite(audio).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _decode(f: BinaryIO, path: Path, limit_s: float | None) -> tuple[np.ndarray, int]:
    f.seek(0)
    try:
        rate = sf.info(f).samplerate
        f.seek(0)
        frames = -1 if limit_s is None else int(limit_s * rate)
        return sf.read(f, frames=frames, dtype="float32", always_2d=True)
    except _SF_ERRORS as e:
        return _decode_with_ffmpeg(f, path, e, limit_s)


def _decode_with_ffmpeg(f: BinaryIO, path: Path, cause: Exception, limit_s: float | None) -> tuple[np.ndarray, int]:
    """Formats libsndfile cannot read (m4a) go through ffmpeg when it is installed."""
    if shutil.which("ffmpeg") is None:
        raise AudioError(path, f"unreadable audio ({cause}); install ffmpeg for .m4a/.mp3") from cause
    cmd = ["ffmpeg", "-nostdin", "-v", "error", *_FFMPEG_INPUT, "-i", _fd_path(f)]
    cmd += [] if limit_s is None else ["-t", f"{limit_s:g}"]
    cmd += ["-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    result = _run_on(f, path, cmd, timeout=600)
    if result.returncode != 0:
        raise AudioError(path, _ffmpeg_problem(result, "unknown")) from cause
    return np.frombuffer(result.stdout, dtype=np.float32).reshape(-1, 1), SAMPLE_RATE


def _ffmpeg_problem(result: subprocess.CompletedProcess, fallback: str) -> str:
    errors = result.stderr.decode(errors="replace")
    refused = _NOT_WHITELISTED.search(errors)
    if refused:
        return (f"not audio but a {refused.group(1).split(',')[0]} file: playlists and containers that refer to "
                "other files are not read (vocabd reads WAV, FLAC, MP3, Ogg and M4A/MP4 audio)")
    return f"unreadable audio: {(errors.strip().splitlines()[-1:] or [fallback])[0]}"


def _fd_path(f: BinaryIO) -> str:
    """The open file itself for a child process: the name in the folder could be swapped meanwhile."""
    return f"/dev/fd/{f.fileno()}"


def _run_on(f: BinaryIO, path: Path, cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    f.seek(0)
    try:
        return subprocess.run(cmd, capture_output=True, pass_fds=(f.fileno(),), stdin=subprocess.DEVNULL,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AudioError(path, f"{cmd[0]} took over {timeout:g} s to read it") from e


def audio_duration(path: Path) -> float:
    """Duration in seconds, from the header."""
    with open(path, "rb") as f:
        return header_seconds(f, Path(path))


def write_wav(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, mode: int | None = None) -> None:
    """Write 16-bit PCM atomically and never through a link (vocabd.files); `mode` sets the permission
    bits (a private recording stays private). Encoded in memory first: libsndfile writing to a file
    object would swallow a full disk's error."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    write_bytes(Path(path), buffer.getvalue(), mode)
