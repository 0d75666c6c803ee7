"""Where to cut a long recording: in its pauses, so that every piece is under the model's 30 s."""

from __future__ import annotations

import numpy as np

from vocabd.audio import SAMPLE_RATE

FRAME_S = 0.02
MAX_PIECE_S = 28.0  # under 30 s with room to spare
MIN_PIECE_S = 4.0  # no cut closer than this to the previous one (the last piece may be shorter)
MIN_GAP_S = 0.15  # a pause at least this long is a candidate cut
QUIET_DB = 30.0  # a frame this far below the recording's loud level counts as a pause


def frame_levels(audio: np.ndarray) -> np.ndarray:
    """RMS level of each 20 ms frame in dB."""
    hop = int(FRAME_S * SAMPLE_RATE)
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    return 20 * np.log10(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) + 1e-9)


def pauses(audio: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) in seconds of every quiet stretch of at least MIN_GAP_S."""
    levels = frame_levels(audio)
    if levels.size == 0:
        return []
    quiet = levels < np.percentile(levels, 95) - QUIET_DB
    found, start = [], None
    for i, is_quiet in enumerate(np.append(quiet, False)):
        if is_quiet and start is None:
            start = i
        elif not is_quiet and start is not None:
            if (i - start) * FRAME_S >= MIN_GAP_S:
                found.append((start * FRAME_S, i * FRAME_S))
            start = None
    return found


def cut_points(audio: np.ndarray) -> list[tuple[float, bool]]:
    """(time, in a pause?) of each cut: the longest pause that keeps the piece under MAX_PIECE_S, or, with no
    pause in reach, the quietest frame there (marked False)."""
    total = len(audio) / SAMPLE_RATE
    gaps = pauses(audio)
    levels = frame_levels(audio)
    cuts, start = [], 0.0
    while total - start > MAX_PIECE_S:
        window = [(end - begin, (begin + end) / 2) for begin, end in gaps
                  if start + MIN_PIECE_S <= (begin + end) / 2 <= start + MAX_PIECE_S]
        if window:
            cut = max(window)[1]
            cuts.append((cut, True))
        else:
            low, high = int((start + MIN_PIECE_S) / FRAME_S), int((start + MAX_PIECE_S) / FRAME_S)
            cut = (low + int(np.argmin(levels[low:high]))) * FRAME_S
            cuts.append((cut, False))
        start = cut
    return cuts
