"""Another pitch and vocal-tract length for a synthetic voice (tts/voice_shift.py), on a vowel made to measure."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.signal import lfilter, welch

from vocabd.audio import SAMPLE_RATE
from vocabd.tts import unavailable_reason
from vocabd.tts.voice_shift import FORMANT_JITTER, PITCH_RANGE, pick_shift, shift_voice

F0, FORMANT = 120.0, 700.0


def vowel(seconds: float = 1.0, whispered: bool = False) -> np.ndarray:
    """A pulse train at F0 (or noise, whispered) through one resonance at FORMANT, 100 Hz wide: one formant."""
    pulses = np.zeros(int(seconds * SAMPLE_RATE))
    pulses[:: round(SAMPLE_RATE / F0)] = 1.0
    if whispered:
        pulses = np.random.default_rng(0).standard_normal(len(pulses))
    radius, angle = np.exp(-np.pi * 100 / SAMPLE_RATE), 2 * np.pi * FORMANT / SAMPLE_RATE
    audio = lfilter([1.0], [1.0, -2 * radius * np.cos(angle), radius**2], pulses)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def pitch_of(audio: np.ndarray) -> float:
    middle = audio[len(audio) // 4 : 3 * len(audio) // 4].astype(np.float64)
    r = np.correlate(middle, middle, "full")[len(middle) - 1 :]
    lo, hi = SAMPLE_RATE // 500, SAMPLE_RATE // 60
    return SAMPLE_RATE / (lo + int(np.argmax(r[lo:hi])))


def formant_of(audio: np.ndarray) -> float:
    """The peak of the averaged spectrum (of a whispered vowel: no harmonics to pick one of)."""
    hz, power = welch(audio, SAMPLE_RATE, nperseg=1024)
    return float(hz[np.argmax(power)])


def test_the_vowel_measures_as_made():
    assert abs(pitch_of(vowel()) - F0) < 2 and abs(formant_of(vowel(2.0, whispered=True)) - FORMANT) < 30


def test_pitch_moves_and_the_formant_stays():
    shifted = shift_voice(vowel(), pitch=1.6, formants=1.0)
    assert len(shifted) == SAMPLE_RATE and shifted.dtype == np.float32
    assert abs(pitch_of(shifted) / F0 - 1.6) < 0.05
    whispered = shift_voice(vowel(2.0, whispered=True), pitch=1.6, formants=1.0)
    assert abs(formant_of(whispered) - FORMANT) < 30  # resampling by 1.6 would put it at 1,120 Hz


def test_the_formant_moves_and_the_pitch_stays():
    assert abs(pitch_of(shift_voice(vowel(), pitch=1.0, formants=1.25)) / F0 - 1.0) < 0.03
    for formants in (0.9, 1.25):
        shifted = shift_voice(vowel(2.0, whispered=True), pitch=1.0, formants=formants)
        assert abs(formant_of(shifted) / FORMANT - formants) < 0.04


def test_level_and_silence_are_kept():
    audio = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), vowel(0.5)])
    shifted = shift_voice(audio, pitch=1.4, formants=1.1)
    assert abs(np.abs(shifted).max() - np.abs(audio).max()) < 1e-3
    assert np.abs(shifted[: SAMPLE_RATE // 2 - 800]).max() < 0.01
    assert shift_voice(audio, 1.0, 1.0) is audio and len(shift_voice(audio[:100], 1.5, 1.2)) == 100


def test_a_share_of_the_draws_gets_a_shift_in_range():
    draws = [pick_shift(random.Random(i), 0.5) for i in range(400)]
    shifted = [d for d in draws if d]
    assert 150 < len(shifted) < 250
    assert all(PITCH_RANGE[0] - 0.01 <= d["pitch"] <= PITCH_RANGE[1] + 0.01 for d in shifted)
    assert max(d["pitch"] for d in shifted) > 1.8  # up to an octave: a woman's voice from a man's
    assert all(FORMANT_JITTER[0] - 0.01 <= d["formants"] / d["pitch"] ** 0.25 <= FORMANT_JITTER[1] + 0.01
               for d in shifted)
    rng = random.Random(0)
    assert pick_shift(rng, 0.0) == {} and rng.random() == random.Random(0).random()  # no draw taken


def frame_pitches(audio: np.ndarray) -> np.ndarray:
    """Per 20 ms, the pitch (YIN's normalized difference) where the frame is loud and clearly periodic, else NaN."""
    n, lags = int(0.04 * SAMPLE_RATE), np.arange(1, SAMPLE_RATE // 60)
    found = []
    for start in range(0, len(audio) - 2 * n, n // 2):
        x = audio[start : start + 2 * n].astype(np.float64)
        d = np.array([np.sum((x[:n] - x[t : t + n]) ** 2) for t in lags])
        normalized = d * lags / np.maximum(np.cumsum(d), 1e-12)
        t = SAMPLE_RATE // 400 + int(np.argmin(normalized[SAMPLE_RATE // 400 :]))
        clear = np.sqrt(np.mean(x[:n] ** 2)) > 0.02 and normalized[t] < 0.2
        found.append(SAMPLE_RATE / lags[t] if clear else np.nan)
    return np.array(found)


@pytest.mark.skipif(unavailable_reason("piper") is not None, reason="piper not installed")
def test_piper_says_a_share_of_its_sentences_in_a_shifted_voice():
    from vocabd.tts.piper import PiperSynthesizer

    assert "pitch" not in PiperSynthesizer(workers=1).pick_voice(random.Random(3)).settings  # off unless asked
    piper = PiperSynthesizer(workers=1, shift_share=1.0)
    voice = piper.pick_voice(random.Random(3))
    assert voice.name == "piper:joe" and {"pitch", "formants"} <= set(voice.settings)
    still = dict(voice.settings, noise_scale=0.0, noise_w_scale=0.0)  # the same speech twice, but for the shift
    text = "Deploy it with kubectl before the standup, then check the dashboards."
    low = piper.render(text, type(voice)(voice.name, dict(still, pitch=1.0, formants=1.0)))
    high = piper.render(text, type(voice)(voice.name, dict(still, pitch=1.7, formants=1.1)))
    assert len(low) == len(high)
    ratios = frame_pitches(high) / frame_pitches(low)
    assert np.sum(np.isfinite(ratios)) > 10 and abs(np.nanmedian(ratios) - 1.7) < 0.1
