"""vocabd's own general sentences (`sentences.txt`, written for the project) and their replay / yardstick split."""

from __future__ import annotations

import hashlib
from pathlib import Path

from vocabd.errors import VocabdError
from vocabd.split import text_key

SENTENCES = Path(__file__).resolve().parent / "sentences.txt"
YARDSTICK_PERCENT = 20  # share of the sentences kept for the safety yardstick, never replayed


def load_sentences(path: Path = SENTENCES, limit: int = 0) -> list[str]:
    """The sentences in file order; `limit` > 0 keeps that many, spread over the file (small test pools)."""
    if not path.is_file():
        raise VocabdError(f"{path}: the general sentences are missing from the installation")
    lines = [s.strip() for s in path.read_text(encoding="utf-8").splitlines()]
    sentences = [s for s in lines if s and not s.startswith("#")]
    if 0 < limit < len(sentences):
        step = len(sentences) / limit
        sentences = [sentences[int(i * step)] for i in range(limit)]
    return sentences


def is_yardstick_text(text: str) -> bool:
    """A stable choice by the normalized text, so a sentence is always on the same side."""
    return int(hashlib.sha256(text_key(text).encode("utf-8")).hexdigest()[:8], 16) % 100 < YARDSTICK_PERCENT


def split_texts(sentences: list[str]) -> tuple[list[str], list[str]]:
    """(replay, yardstick): disjoint by normalized text; each side gets at least one sentence."""
    yardstick = [s for s in sentences if is_yardstick_text(s)]
    yardstick_keys = {text_key(s) for s in yardstick}
    replay = [s for s in sentences if text_key(s) not in yardstick_keys]
    if len(sentences) >= 2 and (not yardstick or not replay):
        # tiny pools: hash luck can leave a side empty; take the last sentence(s) for the yardstick
        cut = max(1, len(sentences) // 5)
        replay, yardstick = sentences[:-cut], sentences[-cut:]
    return replay, yardstick
