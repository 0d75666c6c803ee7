"""The export's self-check: the exported runtime against the PyTorch model it was made from, on held-out clips.

Both sides decode greedily without run-time biasing, one clip at a time (as the runtimes do). The export
passes when its normalized WER is within `WER_TOLERANCE` (absolute) of PyTorch's, its term recall within
`RECALL_TOLERANCE`, and its texts differ from PyTorch's in at most `DISAGREEMENT_TOLERANCE` of the words
(normalized WER of the export against PyTorch's texts): two models that are both wrong in different ways
can have the same WER, not the same words.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocabd.asr.model import Asr
from vocabd.audio import SAMPLE_RATE, load_audio, write_wav
from vocabd.errors import VocabdError
from vocabd.jargon import parse_jargon
from vocabd.log import get_logger
from vocabd.manifest import Clip, read_manifest
from vocabd.scoring.metrics import normalize, overall_recall, term_stats, wer
from vocabd.workspace import MY_VOICE_EVAL, SYNTHETIC_EVAL, Workspace

log = get_logger("vocabd.export.check")

WER_TOLERANCE = 0.02  # absolute difference in normalized WER
RECALL_TOLERANCE = 0.05  # absolute difference in term recall
DISAGREEMENT_TOLERANCE = 0.10  # the export's words against PyTorch's


@dataclass
class CheckSet:
    manifest: Path
    clips: list[Clip]
    terms: list[str]


class SelfCheckFailed(VocabdError):
    pass


def heldout_set(ws: Workspace, limit: int) -> CheckSet:
    """The first `limit` clips of the workspace's held-out jargon clips (the chain's `synthetic_eval`), else of
    the user's held-out recordings, with the workspace's terms."""
    terms = [t.written for t in parse_jargon(ws.jargon)] if ws.jargon.is_file() else []
    for name in (SYNTHETIC_EVAL, MY_VOICE_EVAL):
        path = ws.manifest(name)
        if path.is_file():
            clips, _ = read_manifest(path, root=ws.root)
            if clips:
                return CheckSet(path, clips[:limit], terms)
    raise VocabdError(f"{ws.root}: no held-out clips to check the export on (data/{SYNTHETIC_EVAL}.jsonl, which the "
                      f"chain writes, or data/{MY_VOICE_EVAL}.jsonl); run `vocabd synthesize --heldout`, or pass "
                      "--check-clips 0 to export without the check")


def scores(refs: list[str], texts: list[str], terms: list[str], seconds: float) -> dict:
    recall = overall_recall(term_stats(refs, texts, terms))
    return {"wer_normalized": round(wer(refs, texts, normalized=True), 4),
            "term_recall": None if recall is None else round(recall, 4),
            "seconds_per_clip": round(seconds / len(refs), 3)}


def self_check(asr: Asr, fmt: str, folder: Path, check: CheckSet) -> dict:
    """Transcribe `check` with PyTorch and with the export in `folder`; the figures, or SelfCheckFailed with
    them when they differ beyond the tolerances."""
    audios = [load_audio(c.audio) for c in check.clips]
    refs = [c.text for c in check.clips]
    log.info("self-check: PyTorch", clips=len(audios), manifest=str(check.manifest))
    reference, torch_seconds = pytorch_texts(asr, audios)
    log.info("self-check: the export", format=fmt, clips=len(audios))
    texts, export_seconds = exported_texts(fmt, folder, audios)
    figures = {
        "manifest": str(check.manifest), "clips": len(refs),
        "audio_seconds": round(sum(len(a) for a in audios) / SAMPLE_RATE, 1),
        "pytorch": scores(refs, reference, check.terms, torch_seconds),
        "export": scores(refs, texts, check.terms, export_seconds),
        "same_normalized_text": sum(normalize(a) == normalize(b) for a, b in zip(reference, texts)),
        "disagreement": round(wer(reference, texts, normalized=True), 4),
        "tolerance": {"wer_normalized": WER_TOLERANCE, "term_recall": RECALL_TOLERANCE,
                      "disagreement": DISAGREEMENT_TOLERANCE},
    }
    problems = differences(figures)
    figures["passed"] = not problems
    log.info("self-check", passed=not problems, pytorch=figures["pytorch"], export=figures["export"])
    if problems:
        shown = [f"  {ref!r}\n    pytorch: {a!r}\n    export:  {b!r}"
                 for ref, a, b in zip(refs, reference, texts) if normalize(a) != normalize(b)][:3]
        raise SelfCheckFailed(f"the {fmt} export does not behave like the PyTorch model on {len(refs)} held-out clips "
                              f"({check.manifest}): " + "; ".join(problems) + "; nothing was written. Clips that "
                              "differ:\n" + "\n".join(shown))
    return figures


def differences(figures: dict) -> list[str]:
    pytorch, export = figures["pytorch"], figures["export"]
    problems = []
    if abs(export["wer_normalized"] - pytorch["wer_normalized"]) > WER_TOLERANCE:
        problems.append(f"normalized WER {export['wer_normalized']:.4f} against PyTorch's "
                        f"{pytorch['wer_normalized']:.4f} (tolerance {WER_TOLERANCE})")
    if pytorch["term_recall"] is not None and abs(export["term_recall"] - pytorch["term_recall"]) > RECALL_TOLERANCE:
        problems.append(f"term recall {export['term_recall']:.3f} against PyTorch's {pytorch['term_recall']:.3f} "
                        f"(tolerance {RECALL_TOLERANCE})")
    if figures["disagreement"] > DISAGREEMENT_TOLERANCE:
        problems.append(f"its words differ from PyTorch's by {figures['disagreement']:.4f} (normalized WER against "
                        f"PyTorch's texts; tolerance {DISAGREEMENT_TOLERANCE})")
    return problems


def pytorch_texts(asr: Asr, audios: list[np.ndarray]) -> tuple[list[str], float]:
    from rich.progress import Progress

    from vocabd.asr.transcribe import transcribe

    start = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("self-check: PyTorch", total=len(audios))
        texts = transcribe(asr, audios, batch_size=1, on_batch=lambda n: bar.advance(task, n))
    return texts, time.perf_counter() - start


def exported_texts(fmt: str, folder: Path, audios: list[np.ndarray]) -> tuple[list[str], float]:
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(f"self-check: {fmt} export", total=len(audios))
        if fmt == "onnx":
            from vocabd.export.greedy import OnnxTranscriber

            transcriber = OnnxTranscriber(folder)
            texts, seconds = [], 0.0
            for audio in audios:
                start = time.perf_counter()
                texts.append(transcriber.transcribe(audio))
                seconds += time.perf_counter() - start
                bar.advance(task)
            return texts, seconds
        from vocabd.export.moonshine_cpp import runtime_transcribe

        with tempfile.TemporaryDirectory() as tmp:
            wavs = []
            for i, audio in enumerate(audios):  # the runtime reads 16 kHz WAV files
                wavs.append(Path(tmp) / f"{i}.wav")
                write_wav(wavs[-1], audio)
            return runtime_transcribe(folder, wavs, on_clip=lambda: bar.advance(task))
