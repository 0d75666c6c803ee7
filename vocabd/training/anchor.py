"""A label-free regularizer: keep the adapted model close to the frozen base model on general audio.

At the start of a run the base model (the adapter disabled) transcribes a few general clips; those
transcripts are its own predictions, no labels needed. Every step one small batch of them is scored by the
base model and by the adapted model, teacher-forced on the base transcript, and KL(base || adapted) over the
tokens, times `kl_weight`, is added to the loss: the user's transcript style (lower-case fragments, dropped
punctuation) costs something wherever it would change what the base model says on other speech.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from typing import Any

from vocabd.training.data import Example, collate

ANCHOR_CLIPS = 48
ANCHOR_BATCH = 4


@dataclass
class Anchor:
    examples: list[Example]  # general audio, text = the base model's own transcript
    weight: float
    seed: int
    batch_size: int = ANCHOR_BATCH
    last: float = field(default=0.0)  # the latest KL (per token), for the log

    def batch(self, step: int) -> list[Example]:
        rng = random.Random(self.seed * 7_919 + step)
        return rng.sample(self.examples, min(self.batch_size, len(self.examples)))

    def loss(self, model: Any, step: int, tokenizer: Any, start_id: int, labels: dict) -> Any:
        """weight * mean over tokens of KL(base || adapted) on this step's anchor batch."""
        import torch
        import torch.nn.functional as F

        tensors = collate(self.batch(step), tokenizer, start_id, labels)
        inputs = {k: v for k, v in tensors.items() if k != "labels"}
        mask = tensors["labels"] != -100
        with torch.no_grad(), model.disable_adapter():
            base = F.log_softmax(model(**inputs).logits[mask].float(), dim=-1)
        adapted = F.log_softmax(model(**inputs).logits[mask].float(), dim=-1)
        kl = F.kl_div(adapted, base, log_target=True, reduction="batchmean")
        self.last = float(kl.detach())
        return self.weight * kl


def build_anchor(asr: Any, model: Any, pool: list[Example], weight: float, seed: int,
                 batch_size: int = 8) -> Anchor | None:
    """Up to ANCHOR_CLIPS clips of `pool` (chosen by a stable hash), with the base model's transcripts."""
    from vocabd.asr.transcribe import transcribe

    if weight <= 0 or not pool:
        return None
    chosen = sorted(pool, key=lambda e: hashlib.sha1(f"{seed}:{e.id}".encode()).hexdigest())[:ANCHOR_CLIPS]
    was_training = model.training
    model.eval()
    with model.disable_adapter():
        hyps = transcribe(replace(asr, model=model.get_base_model()), [e.audio for e in chosen], batch_size)
    model.train(was_training)
    examples = [Example(pcm=e.pcm, text=h, id=e.id, source="anchor") for e, h in zip(chosen, hyps) if h.strip()]
    return Anchor(examples, weight, seed) if examples else None
