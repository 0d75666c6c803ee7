"""f5_mlx: F5-TTS on MLX, cloning the user's voice from a 5-10 s sample (docs/training.md, 'Synthesis').

`F5TTS.sample` is called once per sentence with our own duration estimate: the package's `generate()`
splits text on `.!?;:` and mis-estimates durations for several sentences, and imports sounddevice.
Real weights come from the Hugging Face cache (`lucasnewman/f5-tts-mlx`, `lucasnewman/vocos-mel-24khz`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vocabd.audio import SAMPLE_RATE, load_audio
from vocabd.errors import VocabdError
from vocabd.log import get_logger
from vocabd.tts import SynthesisError, Synthesizer, Voice, finish_audio

F5_REPO = "lucasnewman/f5-tts-mlx"
VOCOS_REPO = "lucasnewman/vocos-mel-24khz"
F5_RATE = 24_000
HOP_LENGTH = 256
MIN_REF_SECONDS, MAX_REF_SECONDS = 5.0, 10.0
SHORTEST_REF_SECONDS = 3.0  # below 5 s cloning gets worse; below 3 s it is refused
TARGET_RMS = 0.1

log = get_logger(__name__)


class VoiceSampleError(VocabdError):
    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


@dataclass(frozen=True)
class Reference:
    audio: np.ndarray  # 24 kHz mono, 5-10 s, RMS-normalised
    text: str  # what is said in `audio`
    source: Path

    def fingerprint(self) -> str:
        digest = hashlib.sha256(self.audio.tobytes())
        digest.update(self.text.encode("utf-8"))
        return digest.hexdigest()[:16]


def cached_weights() -> tuple[Path, Path] | None:
    """Snapshot folders of the F5 and Vocos weights in the HF cache, or None when either is missing."""
    from huggingface_hub import try_to_load_from_cache

    f5 = try_to_load_from_cache(F5_REPO, "model_v1.safetensors")
    vocos = try_to_load_from_cache(VOCOS_REPO, "model.safetensors")
    if isinstance(f5, str) and isinstance(vocos, str):
        return Path(f5).parent, Path(vocos).parent
    return None


def f5_unavailable_reason(voice_ref: Path | None) -> str | None:
    if importlib.util.find_spec("f5_tts_mlx") is None:
        return "f5-tts-mlx is not installed (pip install 'vocabd[mlx]')"
    try:
        import mlx.core  # noqa: F401  (plain `mlx` on Linux has no CPU backend; `mlx[cpu]` does)
    except ImportError as e:
        return f"mlx cannot load here ({e}); on Linux install mlx[cpu]<=0.32.1"
    if cached_weights() is None:
        return f"weights not in the Hugging Face cache ({F5_REPO}, {VOCOS_REPO}); voice cloning unavailable"
    if voice_ref is None or not Path(voice_ref).is_file():
        return "no voice sample to clone (data/voice_ref.wav)"
    return None


def sidecar_text(audio_path: Path) -> str | None:
    """The transcript next to a voice sample (`voice_ref.txt` for `voice_ref.wav`), if any."""
    path = Path(audio_path).with_suffix(".txt")
    if path.is_file():
        text = " ".join(path.read_text(encoding="utf-8-sig").split())
        return text or None
    return None


def prepare_reference(
    path: Path, text: str | None, transcribe: Callable[[np.ndarray], str] | None = None
) -> Reference:
    """Load a voice sample at 24 kHz and keep 5-10 s of it; without a transcript, transcribe the kept part."""
    audio = _speech_window(load_audio(path, F5_RATE))
    seconds = len(audio) / F5_RATE
    if seconds < SHORTEST_REF_SECONDS:
        raise VoiceSampleError(path, f"voice sample is {seconds:.1f} s long; cloning needs {MIN_REF_SECONDS:.0f}-{MAX_REF_SECONDS:.0f} s")
    if seconds < MIN_REF_SECONDS:
        log.warning("voice_ref_short", file=str(path), seconds=round(seconds, 2), wanted=f"{MIN_REF_SECONDS}-{MAX_REF_SECONDS}")
    if seconds > MAX_REF_SECONDS:
        audio = audio[: _quietest_cut(audio)]
        text = None  # the transcript covered the whole sample, not the part kept
        log.info("voice_ref_trimmed", file=str(path), seconds=round(seconds, 2), kept=round(len(audio) / F5_RATE, 2))
    if text is None:
        if transcribe is None:
            raise VoiceSampleError(path, "no transcript for the voice sample (add a .txt next to it)")
        import soxr

        text = " ".join(transcribe(soxr.resample(audio, F5_RATE, SAMPLE_RATE).astype(np.float32)).split())
        log.info("voice_ref_transcribed", file=str(path), text=text)
    if not text:
        raise VoiceSampleError(path, "the voice sample's transcript is empty")
    rms = float(np.sqrt(np.mean(np.square(audio))))
    if rms < TARGET_RMS:
        audio = audio * (TARGET_RMS / max(rms, 1e-6))
    return Reference(audio=audio.astype(np.float32), text=text, source=Path(path))


def _speech_window(audio: np.ndarray, frame: int = 480) -> np.ndarray:
    """Drop silent ends, but keep (some of) them when that is needed to stay at 5 s or more."""
    if len(audio) < frame:
        return audio
    energy = np.sqrt(np.mean(audio[: len(audio) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loud = np.flatnonzero(energy > 0.05 * energy.max())
    if len(loud) == 0:
        return audio[:0]
    start, end = loud[0] * frame, (loud[-1] + 1) * frame
    missing = int(MIN_REF_SECONDS * F5_RATE) - (end - start)
    if missing > 0:
        start = max(0, start - missing // 2)
        end = min(len(audio), start + int(MIN_REF_SECONDS * F5_RATE))
        start = max(0, end - int(MIN_REF_SECONDS * F5_RATE))
    return audio[start:end]


def _quietest_cut(audio: np.ndarray, frame: int = 1200) -> int:
    """Sample index of the quietest 50 ms between 5 and 10 s, so the cut falls between words."""
    lo, hi = int(MIN_REF_SECONDS * F5_RATE) // frame, int(MAX_REF_SECONDS * F5_RATE) // frame
    frames = audio[: hi * frame].reshape(hi, frame)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    return int((lo + int(np.argmin(energy[lo:hi]))) * frame + frame // 2)


def transcriber(model: str | None) -> Callable[[np.ndarray], str]:
    """Transcribe with the base ASR model, in a worker process (the daemon runs synthesis and never loads
    torch)."""

    def run(audio: np.ndarray) -> str:
        import tempfile

        from vocabd.audio import write_wav
        from vocabd.child.worker import run_worker

        with tempfile.TemporaryDirectory(prefix="vocabd-voice-ref-") as tmp:
            wav = Path(tmp) / "voice_ref.wav"
            write_wav(wav, audio)
            return run_worker("vocabd.asr.worker", {"audio": str(wav), "model": model}, cwd=Path(tmp),
                              timeout=1800)["text"]

    return run


class F5Synthesizer(Synthesizer):
    backend = "f5_mlx"
    workers = 1  # one MLX model, one sentence at a time

    def __init__(self, model: Any, reference: Reference, model_id: str, steps: int = 8, cloned: bool = True):
        self.model = model
        self.reference = reference
        self.model_id = model_id
        self.steps = steps
        self.cloned = cloned

    @classmethod
    def from_hf_cache(cls, voice_ref: Path, asr_model: str | None = None) -> "F5Synthesizer":
        from f5_tts_mlx.cfm import F5TTS

        weights = cached_weights()
        if weights is None:
            raise SynthesisError(f"f5_mlx: weights not in the Hugging Face cache ({F5_REPO}, {VOCOS_REPO})")
        reference = prepare_reference(voice_ref, sidecar_text(voice_ref), transcriber(asr_model))
        model = F5TTS.from_pretrained(F5_REPO)  # the hub is unreachable: huggingface_hub resolves the cache
        return cls(model, reference, model_id=f"{F5_REPO}@{weights[0].name}")

    def identity(self) -> str:
        return f"f5-tts-mlx {self.model_id} steps={self.steps} ref={self.reference.fingerprint()}"

    def pick_voice(self, rng: random.Random) -> Voice:
        return Voice(name="f5:cloned" if self.cloned else "f5:reference", settings={
            "speed": round(rng.uniform(0.9, 1.1), 2), "seed": rng.randint(0, 2**31 - 1),
            "peak": round(rng.uniform(0.5, 0.9), 2),
        })

    def render(self, text: str, voice: Voice) -> np.ndarray:
        import mlx.core as mx
        from f5_tts_mlx.utils import convert_char_to_pinyin

        ref = mx.array(self.reference.audio)
        frames = self._frames(text, voice.settings["speed"])
        wave, _ = self.model.sample(
            mx.expand_dims(ref, axis=0),
            text=convert_char_to_pinyin([f"{self.reference.text} {text}"]),
            duration=frames,
            steps=self.steps,
            method="rk4",
            cfg_strength=2.0,
            sway_sampling_coef=-1.0,
            seed=voice.settings["seed"],
        )
        wave = wave[ref.shape[0] :]  # the output starts with the reference itself
        mx.eval(wave)
        audio = np.array(wave, dtype=np.float32)
        if audio.size == 0 or not np.isfinite(audio).all():
            raise SynthesisError(f"f5_mlx produced no usable audio for {text!r}")
        return finish_audio(audio, F5_RATE, peak=voice.settings.get("peak", 0.9))

    def _frames(self, text: str, speed: float) -> int:
        """Reference frames plus the new text at the reference's bytes-per-frame pace."""
        ref_frames = len(self.reference.audio) // HOP_LENGTH
        ref_bytes = max(1, len(self.reference.text.encode("utf-8")))
        return ref_frames + int(ref_frames / ref_bytes * len(text.encode("utf-8")) / speed)
