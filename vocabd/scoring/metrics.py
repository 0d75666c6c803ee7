"""WER (raw and normalized) and per-term recall / false alarms."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Sequence

import jiwer

from vocabd.scoring.numbers import words_to_digits

_PUNCT = re.compile(r"[^\w\s'@]")  # keep apostrophes and @ (part of addresses)


def normalize(text: str) -> str:
    """Lower case, no punctuation, hyphens as spaces, number words as digits, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    text = text.replace("-", " ").replace("_", " ")
    text = _PUNCT.sub(" ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)  # quotes, not contractions
    return " ".join(words_to_digits(text.split()))


@dataclass
class WordErrors:
    errors: int  # substitutions + deletions + insertions
    words: int  # reference words

    @property
    def rate(self) -> float:
        return self.errors / self.words if self.words else float(self.errors > 0)


def word_errors(ref: str, hyp: str, normalized: bool = False) -> WordErrors:
    if normalized:
        ref, hyp = normalize(ref), normalize(hyp)
    ref_words, hyp_words = ref.split(), hyp.split()
    if not ref_words:
        return WordErrors(errors=len(hyp_words), words=0)
    if not hyp_words:
        return WordErrors(errors=len(ref_words), words=len(ref_words))
    out = jiwer.process_words(ref, hyp)
    return WordErrors(errors=out.substitutions + out.deletions + out.insertions, words=len(ref_words))


def wer(refs: Sequence[str], hyps: Sequence[str], normalized: bool = False) -> float:
    """Corpus WER: all errors over all reference words."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    counts = [word_errors(r, h, normalized) for r, h in zip(refs, hyps)]
    words = sum(c.words for c in counts)
    errors = sum(c.errors for c in counts)
    return errors / words if words else float(errors > 0)


@dataclass
class TermStats:
    expected: int = 0  # occurrences in the references
    hits: int = 0  # of those, written exactly right in the hypothesis
    false_alarms: int = 0  # occurrences in hypotheses beyond what the reference has

    @property
    def recall(self) -> float | None:
        return self.hits / self.expected if self.expected else None

    def to_dict(self) -> dict:
        return {**asdict(self), "recall": self.recall}


SENTENCE_START = r"(?:^|(?<=[.!?:;]\s)|(?<=[.!?:;][\"')\]]\s))\s*[\"'(\[]?"


def count_term(term: str, text: str) -> int:
    """Occurrences of the exact written form (case-sensitive), not inside a longer word. A term written in
    lower case also counts with its first letter capitalized where it starts a sentence ("Res judicata
    applies"), which is how it is written there."""
    left = r"(?<!\w)" if term[:1].isalnum() else ""
    right = r"(?!\w)" if term[-1:].isalnum() else ""
    count = len(re.findall(left + re.escape(term) + right, text))
    if term[:1].islower():
        capital = term[:1].upper() + term[1:]
        count += len(re.findall(SENTENCE_START + re.escape(capital) + right, text))
    return count


def term_stats(refs: Sequence[str], hyps: Sequence[str], terms: Sequence[str]) -> dict[str, TermStats]:
    stats = {term: TermStats() for term in terms}
    for ref, hyp in zip(refs, hyps):
        for term, s in stats.items():
            in_ref, in_hyp = count_term(term, ref), count_term(term, hyp)
            s.expected += in_ref
            s.hits += min(in_ref, in_hyp)
            s.false_alarms += max(0, in_hyp - in_ref)
    return stats


def overall_recall(stats: dict[str, TermStats]) -> float | None:
    expected = sum(s.expected for s in stats.values())
    return sum(s.hits for s in stats.values()) / expected if expected else None


# uncertainty -------------------------------------------------------------------------------------

BOOTSTRAP_ROUNDS = 2000
CONFIDENCE = 0.95


def bootstrap_interval(errors: Sequence[int], words: Sequence[int], rounds: int = BOOTSTRAP_ROUNDS,
                       seed: int = 0) -> tuple[float, float]:
    """A 95% interval of the corpus WER, resampling whole clips (their words stay together)."""
    import numpy as np

    err, ref = np.asarray(errors, dtype=float), np.asarray(words, dtype=float)
    if len(err) == 0:
        return (0.0, 0.0)
    picks = np.random.default_rng(seed).integers(0, len(err), size=(rounds, len(err)))
    rates = err[picks].sum(axis=1) / np.maximum(ref[picks].sum(axis=1), 1.0)
    return _quantiles(rates)


def paired_bootstrap(base_errors: Sequence[int], adapter_errors: Sequence[int], words: Sequence[int],
                     rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> tuple[float, float]:
    """A 95% interval of (adapter WER - base WER) on the same clips, resampled together."""
    import numpy as np

    base, adapted = np.asarray(base_errors, dtype=float), np.asarray(adapter_errors, dtype=float)
    ref = np.asarray(words, dtype=float)
    if not (len(base) == len(adapted) == len(ref)):
        raise ValueError(f"{len(base)} base, {len(adapted)} adapter and {len(ref)} word counts")
    if len(ref) == 0:
        return (0.0, 0.0)
    picks = np.random.default_rng(seed).integers(0, len(ref), size=(rounds, len(ref)))
    total = np.maximum(ref[picks].sum(axis=1), 1.0)
    return _quantiles((adapted[picks].sum(axis=1) - base[picks].sum(axis=1)) / total)


def _quantiles(values) -> tuple[float, float]:
    import numpy as np

    tail = (1.0 - CONFIDENCE) / 2
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return (float(low), float(high))
