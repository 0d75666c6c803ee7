"""Batched transcription with generation capped by audio length."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from vocabd.asr.labels import DECODER_START_ID
from vocabd.asr.model import Asr
from vocabd.audio import SAMPLE_RATE

TOKENS_PER_SECOND = 6.5  # longer generation loops hallucinate
LOOP_REPEATS = 2  # a phrase said twice in a row (and at least LOOP_TOKENS long in all) at the end of a text
LOOP_TOKENS = 6  # that never ended is a decoding loop


def max_new_tokens(seconds: float) -> int:
    return max(8, math.ceil(seconds * TOKENS_PER_SECOND))


def drop_loop(ids: Sequence[int], eos: int) -> list[int]:
    """A generation that ran out of tokens while repeating a phrase ('of the 2000s, of the 2000s, of the 20')
    keeps the phrase once. One that ended by itself is left alone: people do repeat themselves."""
    ids = list(ids)
    if eos in ids:
        return ids
    for period in range(1, len(ids) // LOOP_REPEATS + 1):
        periodic = period  # the length of the tail in which every token equals the one `period` later
        while periodic < len(ids) and ids[-periodic - 1] == ids[-periodic - 1 + period]:
            periodic += 1
        if periodic >= max(LOOP_REPEATS * period, LOOP_TOKENS):
            return ids[: len(ids) - periodic + period]
    return ids


def pad_batch(audios: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad with zeros; returns (values [B, T], attention mask [B, T])."""
    longest = max(len(a) for a in audios)
    values = np.zeros((len(audios), longest), dtype=np.float32)
    mask = np.zeros((len(audios), longest), dtype=np.int64)
    for row, audio in enumerate(audios):
        values[row, : len(audio)] = audio
        mask[row, : len(audio)] = 1
    return values, mask


def transcribe(
    asr: Asr,
    audios: Sequence[np.ndarray],
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Texts for 16 kHz mono float32 clips, in input order. Clips of similar length share a batch.
    With `asr.bias` set (`biasing.with_bias`), generation favours the jargon's terms and the texts have them
    written as the list does; `asr.beams` hypotheses are kept at each step."""
    import torch
    from transformers import LogitsProcessorList

    processors = LogitsProcessorList([asr.bias] if asr.bias else [])

    order = sorted(range(len(audios)), key=lambda i: len(audios[i]))
    texts = [""] * len(audios)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        values, mask = pad_batch([audios[i] for i in chunk])
        with torch.inference_mode():
            ids = asr.model.generate(
                input_values=torch.from_numpy(values),
                attention_mask=torch.from_numpy(mask),
                max_new_tokens=max_new_tokens(values.shape[1] / SAMPLE_RATE),
                decoder_start_token_id=DECODER_START_ID,
                do_sample=False,
                num_beams=asr.beams,
                logits_processor=processors,
            )
        rows = [drop_loop(row, asr.tokenizer.eos_token_id) for row in ids.tolist()]
        for i, text in zip(chunk, asr.tokenizer.batch_decode(rows, skip_special_tokens=True)):
            texts[i] = asr.bias.rewrite(text.strip()) if asr.bias else text.strip()
        if on_batch is not None:
            on_batch(len(chunk))
    return texts
