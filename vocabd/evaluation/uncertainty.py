"""How far to trust a WER: clips, words and a bootstrap interval, and base vs adapter on the same clips.

Works on the per-utterance ref and hyp of an EvalResult. Normalized counts (case, punctuation, number words
ignored), as the gate uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from vocabd.evaluation.evaluate import EvalResult
from vocabd.scoring.metrics import bootstrap_interval, paired_bootstrap, word_errors


@dataclass
class Spread:
    """A WER with its 95% bootstrap interval, over `clips` clips holding `words` reference words."""
    clips: int
    words: int
    wer: float
    low: float
    high: float


@dataclass
class Change:
    """The adapter's WER minus the base model's on the clips both scored, with its paired 95% interval;
    `within_noise` when the interval includes 0 (the data cannot tell the two apart)."""
    clips: int
    words: int
    change: float
    low: float
    high: float
    within_noise: bool


def clip_counts(result: EvalResult, normalized: bool = True) -> dict[str, tuple[int, int]]:
    """audio -> (errors, reference words) for every utterance, normalized unless told otherwise."""
    counts = {}
    for u in result.utterances:
        c = word_errors(u.ref, u.hyp, normalized=normalized)
        counts[u.audio or u.id] = (c.errors, c.words)
    return counts


def wer_spread(result: EvalResult, normalized: bool = True) -> Spread:
    """The (normalized) WER with its 95% bootstrap interval."""
    counts = list(clip_counts(result, normalized).values())
    errors, words = [c[0] for c in counts], [c[1] for c in counts]
    total = sum(words)
    low, high = bootstrap_interval(errors, words)
    return Spread(len(counts), total, sum(errors) / total if total else 0.0, low, high)


def paired_change(base: EvalResult, adapter: EvalResult) -> Change:
    """The adapter's normalized WER minus the base model's on the clips both scored, with its 95% interval."""
    before, after = clip_counts(base), clip_counts(adapter)
    shared = [key for key in before if key in after]
    words = [before[k][1] for k in shared]
    base_errors, adapter_errors = [before[k][0] for k in shared], [after[k][0] for k in shared]
    total = sum(words)
    change = (sum(adapter_errors) - sum(base_errors)) / total if total else 0.0
    low, high = paired_bootstrap(base_errors, adapter_errors, words)
    return Change(len(shared), total, change, low, high, low <= 0.0 <= high)


def describe_change(change: Change) -> str:
    """e.g. '-0.012 (95% interval -0.020..-0.004, 45 clips, 610 words)' plus 'within the noise' when it is."""
    text = (f"{change.change:+.3f} (95% interval {change.low:+.3f}..{change.high:+.3f}, "
            f"{change.clips} clips, {change.words} words)")
    return text + (", within the noise" if change.within_noise else "")
