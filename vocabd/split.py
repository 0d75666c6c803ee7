"""Which side of the train / held-out split a recording goes to, decided by its transcript.

Whole prompts are held out: the choice is a stable hash of the normalized transcript, so two recordings of
the same text ("Thank you.", "thank you") always land on the same side and the primary WER never scores a
sentence the adapter was trained on. Only sentence-length transcripts are held out: single words, letters
and digits train (their WER says little about how well a voice is understood, and they repeat).
"""

from __future__ import annotations

import hashlib

from vocabd.scoring.metrics import normalize

SENTENCE_MIN_WORDS = 4  # shorter transcripts always train
HELD_OUT_PERCENT = 25  # share of sentence-length transcripts held out (about 1 in 10 of a typical drop)


def text_key(text: str) -> str:
    """The normalized transcript: equal for texts that differ only in case, punctuation or number words."""
    return normalize(text)


def split_for_text(text: str) -> str:
    """'eval' or 'train' for a recording with transcript `text`; the same text always gets the same side."""
    key = text_key(text)
    if len(key.split()) < SENTENCE_MIN_WORDS:
        return "train"
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "eval" if bucket < HELD_OUT_PERCENT else "train"
