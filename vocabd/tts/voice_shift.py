"""Another voice from the same synthesizer: pitch and vocal-tract length moved independently.

Resampling moves pitch and formants together (a child's voice, not a woman's). Here the speech is split into a
source and a filter (linear prediction): the source's pitch is moved by resampling it and stretching it back to
its length, the filter's formants by analysing a time-compressed copy of each frame, and the two are joined again.
"""

from __future__ import annotations

import random

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter, lfiltic, resample

from vocabd.audio import SAMPLE_RATE

ORDER = 18  # poles at 16 kHz: one pair a kilohertz, two for the glottis and the lips
FRAME = int(0.03 * SAMPLE_RATE)  # analysis window
HOP = int(0.01 * SAMPLE_RATE)  # the filter changes this often
PRE_EMPHASIS = 0.97
STRETCH_WINDOW = int(0.04 * SAMPLE_RATE)  # WSOLA: segments two pitch periods of a low voice long
STRETCH_TOLERANCE = int(0.01 * SAMPLE_RATE)  # how far a segment may slide to line up with the last one
PITCH_RANGE = (0.85, 2.0)  # a share of the sentences moves from the voice's own pitch by up to an octave up
FORMANT_EXPONENT = 0.25  # formants rise with pitch, slower: women's are ~17% above men's at an octave apart
FORMANT_JITTER = (0.95, 1.05)


def pick_shift(rng: random.Random, share: float) -> dict:
    """`pitch` and `formants` voice settings for `share` of the draws, nothing for the rest."""
    if share <= 0 or rng.random() >= share:
        return {}
    pitch = float(np.exp(rng.uniform(*np.log(PITCH_RANGE))))
    return {"pitch": round(pitch, 2), "formants": round(pitch**FORMANT_EXPONENT * rng.uniform(*FORMANT_JITTER), 2)}


def shift_voice(audio: np.ndarray, pitch: float, formants: float) -> np.ndarray:
    """`audio` (float32, 16 kHz) with its pitch times `pitch` and its formants times `formants`, as long as before."""
    if len(audio) < FRAME or (pitch == 1.0 and formants == 1.0):
        return audio
    emphasized = lfilter([1.0, -PRE_EMPHASIS], [1.0], audio.astype(np.float64))
    frames = _frames(emphasized)
    source = _inverse_filter(emphasized, [_predictor(f) for f in frames])
    moved = _stretch(_resample(source, pitch), len(audio))
    shifted = _filter(moved, [_predictor(resample(f, max(ORDER + 2, round(len(f) / formants)))) for f in frames])
    shifted = lfilter([1.0], [1.0, -PRE_EMPHASIS], shifted)
    shifted *= _level_match(audio, shifted)
    peak = float(np.max(np.abs(shifted)))
    return (shifted * (float(np.max(np.abs(audio))) / peak)).astype(np.float32) if peak > 0 else audio


def _frames(audio: np.ndarray) -> list[np.ndarray]:
    """A Hann-windowed frame centred on each hop's block."""
    padded = np.pad(audio, (FRAME, FRAME))
    window = np.hanning(FRAME)
    offset = FRAME + HOP // 2 - FRAME // 2
    return [padded[offset + start : offset + start + FRAME] * window for start in range(0, len(audio), HOP)]


def _predictor(frame: np.ndarray) -> np.ndarray:
    """The inverse filter A(z) = 1 + a1 z^-1 + ... of the frame's spectral envelope (autocorrelation method)."""
    r = np.correlate(frame, frame, "full")[len(frame) - 1 : len(frame) + ORDER]
    if r[0] <= 0:
        return np.r_[1.0, np.zeros(ORDER)]
    r[0] *= 1.0 + 1e-4  # a little white noise keeps the system well conditioned and the filter stable
    return np.r_[1.0, solve_toeplitz(r[:ORDER], -r[1 : ORDER + 1])]


def _inverse_filter(audio: np.ndarray, predictors: list[np.ndarray]) -> np.ndarray:
    padded = np.pad(audio, (ORDER, 0))
    blocks = [lfilter(a, [1.0], padded[start : start + HOP + ORDER])[ORDER:]
              for a, start in zip(predictors, range(0, len(audio), HOP))]
    return np.concatenate(blocks)[: len(audio)]


def _filter(source: np.ndarray, predictors: list[np.ndarray]) -> np.ndarray:
    """The all-pole synthesis filter 1/A(z), its coefficients changing every hop and its past outputs carried over."""
    out = np.zeros(len(source) + ORDER)
    for a, start in zip(predictors, range(0, len(source), HOP)):
        block = source[start : start + HOP]
        state = lfiltic([1.0], a, out[start : start + ORDER][::-1])
        out[start + ORDER : start + ORDER + len(block)] = lfilter([1.0], a, block, zi=state)[0]
    return out[ORDER:]


def _resample(audio: np.ndarray, pitch: float) -> np.ndarray:
    """Played `pitch` times faster: every frequency times `pitch`, the length divided by it."""
    import soxr

    return soxr.resample(audio, SAMPLE_RATE * pitch, SAMPLE_RATE)


def _stretch(audio: np.ndarray, length: int) -> np.ndarray:
    """`audio` made `length` samples long without moving its pitch (WSOLA: overlap-add of segments that line up)."""
    window, hop, tolerance = STRETCH_WINDOW, STRETCH_WINDOW // 2, STRETCH_TOLERANCE
    padded = np.pad(audio, (tolerance, window + hop + tolerance))
    out, weight = np.zeros(length + window), np.zeros(length + window)
    taper = np.hanning(window)
    rate = len(audio) / length
    position = 0
    for out_start in range(0, length, hop):
        if out_start:
            follow = padded[tolerance + position + hop : tolerance + position + hop + window]
            nominal = min(round(out_start * rate), len(audio))
            candidates = padded[nominal : nominal + 2 * tolerance + window]
            position = nominal - tolerance + int(np.argmax(np.correlate(candidates, follow, "valid")))
        out[out_start : out_start + window] += padded[tolerance + position : tolerance + position + window] * taper
        weight[out_start : out_start + window] += taper
    return out[:length] / np.maximum(weight[:length], 1e-3)


def _level_match(original: np.ndarray, shifted: np.ndarray) -> np.ndarray:
    """A slowly varying gain that gives the shifted audio the original's loudness contour."""
    def energy(x: np.ndarray) -> np.ndarray:
        return np.convolve(x.astype(np.float64) ** 2, np.hanning(4 * HOP), "same")

    gain = np.sqrt(energy(original) / np.maximum(energy(shifted), 1e-12))
    return np.clip(gain, 0.0, 10.0)
