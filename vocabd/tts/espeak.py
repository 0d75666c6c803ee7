"""espeak-ng: very fast, robotic, many voices. The last fallback and a source of voice variety."""

from __future__ import annotations

import io
import random
import shutil
import subprocess

import numpy as np
import soundfile as sf

from vocabd.tts import SynthesisError, Synthesizer, Voice, finish_audio, pick_speed

# Two disjoint sets: held-out clips must be in voices never used for training. The variants the base model
# understood worst (en-029, en-gb-x-gbcwmd: ~40% error on plain words) are left out, and the Scottish ones
# (up to 50%) stay out of the held-out set, whose WER should measure the jargon (docs/benchmarks.md).
TRAIN_VOICES = (
    "en-us", "en-us+m1", "en-us+m3", "en-us+m6", "en-us+f2", "en-us+klatt2", "en-gb+m1", "en-gb+f2", "en-gb+f4",
    "en-gb-x-rp+m7", "en-gb-scotland+m4", "en-gb-x-gbclan+f5",
)
HELDOUT_VOICES = ("en-us+f3", "en-us+f4", "en-gb+m3", "en-gb-x-rp+f2")
RATES = (130, 175)  # words per minute; fast speech was the hardest to understand (piper, docs/benchmarks.md)


class EspeakSynthesizer(Synthesizer):
    backend = "espeak"
    cloned = False

    def __init__(self, voices: tuple[str, ...] = TRAIN_VOICES, workers: int = 2,
                 speeds: tuple[float, float] | None = None):
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise SynthesisError("espeak-ng is not installed (apt-get install espeak-ng)")
        self.binary = binary
        self.voices = voices
        self.workers = workers  # each sentence is its own process
        self.speeds = speeds  # speed perturbation range, or None for none

    def identity(self) -> str:
        version = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout.strip()
        return f"espeak-ng {version}"

    def pick_voice(self, rng: random.Random) -> Voice:
        return Voice(
            name=f"espeak:{rng.choice(self.voices)}",
            settings={"rate": rng.randint(*RATES), "pitch": rng.randint(35, 65), "peak": round(rng.uniform(0.5, 0.9), 2),
                      **pick_speed(rng, self.speeds)},
        )

    def render(self, text: str, voice: Voice) -> np.ndarray:
        name = voice.name.removeprefix("espeak:")
        cmd = [self.binary, "-v", name, "-s", str(voice.settings["rate"]), "-p", str(voice.settings["pitch"]), "--stdout"]
        result = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=60)
        if result.returncode != 0 or not result.stdout:
            raise SynthesisError(f"espeak-ng {name} failed: {result.stderr.decode(errors='replace').strip()}")
        audio, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
        return finish_audio(audio, rate, peak=voice.settings.get("peak", 0.9), speed=voice.settings.get("speed", 1.0))
