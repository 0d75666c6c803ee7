"""Evaluate a model on a manifest: transcribe every clip, then score it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from vocabd.asr.model import Asr
from vocabd.asr.transcribe import transcribe
from vocabd.audio import SAMPLE_RATE, load_audio
from vocabd.scoring.metrics import TermStats, overall_recall, term_stats, wer, word_errors
from vocabd.manifest import Clip

WORST_SHOWN = 10


@dataclass
class Utterance:
    id: str
    audio: str
    ref: str
    hyp: str
    errors: int
    words: int

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float(self.errors > 0)


@dataclass
class EvalResult:
    model: str
    adapter: str
    clips: int
    audio_seconds: float
    wall_seconds: float
    wer: float
    wer_normalized: float
    terms: dict[str, TermStats]
    utterances: list[Utterance]
    skipped: list[str] = field(default_factory=list)  # bad manifest rows, with the reason
    bias: dict | None = None  # the jargon biasing decoding ran with (terms, boost), None when off
    beams: int = 1  # beam search width decoding ran with

    @property
    def rtf(self) -> float:
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else 0.0

    @property
    def term_recall(self) -> float | None:
        return overall_recall(self.terms)

    def worst(self, n: int = WORST_SHOWN) -> list[Utterance]:
        return sorted(self.utterances, key=lambda u: (u.errors, u.wer), reverse=True)[:n]

    def to_dict(self) -> dict:
        return {
            "model": self.model, "adapter": self.adapter, "clips": self.clips,
            "audio_seconds": round(self.audio_seconds, 3), "wall_seconds": round(self.wall_seconds, 3),
            "rtf": round(self.rtf, 4), "wer": self.wer, "wer_normalized": self.wer_normalized,
            "term_recall": self.term_recall,
            "terms": {t: s.to_dict() for t, s in self.terms.items()},
            "false_alarms": sum(s.false_alarms for s in self.terms.values()),
            "worst": [vars(u) | {"wer": u.wer} for u in self.worst()],
            "utterances": [vars(u) | {"wer": u.wer} for u in self.utterances],
            "skipped": self.skipped, "bias": self.bias, "beams": self.beams,
        }


def evaluate_clips(
    asr: Asr, clips: Sequence[Clip], terms: Sequence[str] = (), batch_size: int = 8, progress: bool = True,
) -> EvalResult:
    """Transcribe `clips` and score them; wall time covers decoding and recognition."""
    from rich.progress import Progress

    start = time.perf_counter()
    audios = [load_audio(c.audio) for c in clips]
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("transcribing", total=len(clips))
        hyps = transcribe(asr, audios, batch_size, on_batch=lambda n: bar.advance(task, n))
    wall = time.perf_counter() - start
    result = score_transcripts([c.text for c in clips], hyps, terms, [c.id for c in clips],
                               [str(c.audio) for c in clips])
    result.model, result.adapter = asr.name, str(asr.adapter or "")
    result.audio_seconds, result.wall_seconds = sum(len(a) for a in audios) / SAMPLE_RATE, wall
    result.bias, result.beams = (asr.bias.describe() if asr.bias else None), asr.beams
    return result


def score_transcripts(refs: Sequence[str], hyps: Sequence[str], terms: Sequence[str] = (),
                      ids: Sequence[str] | None = None, audio: Sequence[str] | None = None) -> EvalResult:
    """The scores of hypotheses against their references (WER raw and normalized, term recall), with no
    model and no timing yet."""
    ids = list(ids) if ids is not None else [str(i) for i in range(len(refs))]
    audio = list(audio) if audio is not None else ids
    utterances = []
    for key, path, ref, hyp in zip(ids, audio, refs, hyps):
        counts = word_errors(ref, hyp)
        utterances.append(Utterance(key, path, ref, hyp, counts.errors, counts.words))
    return EvalResult(model="", adapter="", clips=len(refs), audio_seconds=0.0, wall_seconds=0.0,
                      wer=wer(list(refs), list(hyps)), wer_normalized=wer(list(refs), list(hyps), normalized=True),
                      terms=term_stats(list(refs), list(hyps), terms), utterances=utterances)
