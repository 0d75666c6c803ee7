"""Training labels for Moonshine (docs/training.md: labels and loss): text ids without specials, then end-of-sequence."""

from __future__ import annotations

from typing import Any

DECODER_START_ID = 1


def encode_labels(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
