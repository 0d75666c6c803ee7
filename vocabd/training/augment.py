"""Rooms and noise for the training clips that are not the user's recordings, drawn afresh each time.

A synthesizer's clips are studio-clean and come from one or a few voices, so a model can learn their sound as
well as their words. A share of them is heard through a random room (reverberation) over a random noise floor
instead. The user's own recordings already carry a real room and are left as they are; the jargon sentences and
the general-speech replay are treated alike, so "a room" never comes to mean "jargon follows".

Every draw is a pure function of the run's seed, the step and the clip, so a resumed run hears the same audio.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from vocabd.audio import SAMPLE_RATE
from vocabd.training.data import Example, to_pcm

SNR_DB = (10.0, 30.0)  # speech over noise
NOISE_TILT = (0.0, 2.0)  # power falls as 1/f**tilt: 0 white, 1 pink, 2 brown
REVERB_SHARE = 0.5  # of the augmented clips, these also get a room
RT60_SECONDS = (0.15, 0.7)  # reverberation time: a small office to a large room
DIRECT_TO_REVERB_DB = (-3.0, 12.0)


def augment_batch(batch: list[Example], share: float, seed: int, step: int) -> list[Example]:
    """The batch with `share` of its clips that are not the user's recordings heard through a room and noise."""
    if share <= 0:
        return batch
    return [_maybe_augmented(e, share, seed, step) for e in batch]


def _maybe_augmented(example: Example, share: float, seed: int, step: int) -> Example:
    if example.source == "real":
        return example
    rng = np.random.default_rng([seed, step, zlib.crc32(example.id.encode())])
    if rng.random() >= share:
        return example
    return replace(example, pcm=to_pcm(augment(example.audio, rng)))


def augment(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`audio` (float32, 16 kHz) in a random room, when one is drawn, over coloured noise at a random SNR."""
    if rng.random() < REVERB_SHARE:
        audio = reverberate(audio, rng)
    return add_noise(audio, rng.uniform(*SNR_DB), rng.uniform(*NOISE_TILT), rng)


def add_noise(audio: np.ndarray, snr_db: float, tilt: float, rng: np.random.Generator) -> np.ndarray:
    """`audio` plus noise whose power falls as 1/f**`tilt`, at `snr_db` below the audio's mean power."""
    power = float(np.mean(audio.astype(np.float64) ** 2))
    if power == 0.0:
        return audio
    noise = coloured_noise(len(audio), tilt, rng)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / max(float(np.mean(noise**2)), 1e-20))
    return _within_full_scale(audio + noise)


def coloured_noise(samples: int, tilt: float, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.fft.rfftfreq(samples, 1 / SAMPLE_RATE)
    frequencies[0] = frequencies[1] if samples > 2 else 1.0  # no infinite power at 0 Hz
    return np.fft.irfft(spectrum / frequencies ** (tilt / 2), n=samples)


def reverberate(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`audio` convolved with a random room response, scaled back to its own peak level."""
    response = room_response(rng.uniform(*RT60_SECONDS), rng.uniform(*DIRECT_TO_REVERB_DB), rng)
    size = len(audio) + len(response) - 1
    wet = np.fft.irfft(np.fft.rfft(audio, size) * np.fft.rfft(response, size), n=size)[: len(audio)]
    peak, wet_peak = float(np.max(np.abs(audio))), float(np.max(np.abs(wet)))
    return (wet * (peak / wet_peak)).astype(np.float32) if wet_peak > 0 else audio


def room_response(rt60: float, direct_to_reverb_db: float, rng: np.random.Generator) -> np.ndarray:
    """A direct path, then a noise tail that decays by 60 dB in `rt60` seconds, `direct_to_reverb_db` below it."""
    t = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)  # e**-6.9 = -60 dB
    tail[0] = 0.0
    tail *= np.sqrt(10 ** (-direct_to_reverb_db / 10) / max(float(np.sum(tail**2)), 1e-20))
    tail[0] = 1.0
    return tail


def _within_full_scale(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio)))
    scaled = audio * (0.99 / peak) if peak > 0.99 else audio
    return scaled.astype(np.float32)
