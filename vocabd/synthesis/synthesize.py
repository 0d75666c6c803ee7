"""The synthesize job: jargon sentences -> `data/synthetic/<hash>.wav` + `data/synthetic_train(_mini).jsonl`.

Clips are content-addressed (label + spoken text + backend identity + voice + settings), so a re-run only
makes what is missing. A failed clip is reported and skipped; the job fails only when most clips fail.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vocabd.audio import SAMPLE_RATE, write_wav
from vocabd.errors import VocabdError
from vocabd.jargon import Term, parse_jargon
from vocabd.log import get_logger
from vocabd.manifest import MAX_SECONDS, MIN_SECONDS, Clip, read_manifest, write_manifest
from vocabd.synthesis.results import Failure, SynthesisResult
from vocabd.synthesis.sentences import Sentence, generate_sentences
from vocabd.tts import (SynthesisError, Synthesizer, Voice, build_backend, expected_backend, select_backend,
                        unavailable_reason)
from vocabd.workspace import MY_VOICE_TRAIN, SYNTHETIC_EVAL, SYNTHETIC_TRAIN, Workspace, check_phase

SYNTHETIC_DIR = "synthetic"
HELDOUT_SEED_OFFSET = 1_000_003  # held-out sentences use their own random stream

log = get_logger(__name__)


def synthetic_manifest(ws: Workspace, phase: str) -> Path:
    return ws.phase_manifest(SYNTHETIC_TRAIN, phase)


def voice_ref_path(ws: Workspace) -> Path | None:
    path = ws.voice_ref
    return path if path.is_file() else None


def user_transcripts(ws: Workspace) -> list[str]:
    """The user's own transcripts, used as sentence carriers (unreadable rows are skipped here)."""
    path = ws.manifest(MY_VOICE_TRAIN)
    if not path.is_file():
        return []
    clips, _ = read_manifest(path, root=ws.root, allow_outside=True, check_audio=False)
    return [clip.text for clip in clips]


def synthesize(ws: Workspace, phase: str, count: int | None = None, progress: bool = True) -> SynthesisResult:
    """Make `count` (default: the phase's clip count) jargon clips for training in the best available voice."""
    check_phase(phase)
    count = count if count is not None else getattr(ws.config, phase).clips
    terms = workspace_terms(ws)
    sentences = generate_sentences(terms, count, seed=ws.config.synthesis.seed, carriers=user_transcripts(ws))
    backend = select_backend(ws.config, voice_ref_path(ws))
    result = render_sentences(ws, sentences, backend, synthetic_manifest(ws, phase), progress=progress)
    _store_summary(result)
    return result


def no_jargon_synthesis(ws: Workspace, phase: str) -> SynthesisResult:
    """Without a jargon list the phase trains on the user's recordings alone: its synthetic manifest is empty
    (so no clips of an earlier list are mixed in)."""
    check_phase(phase)
    result = SynthesisResult(manifest=synthetic_manifest(ws, phase), backend="none", cloned=False, voices=[],
                             requested=0, made=0, cached=0)
    write_manifest(result.manifest, [])
    _store_summary(result)
    log.info("synthesize_skipped", phase=phase, reason="no jargon list: the recordings alone are trained on")
    return result


def synthesize_heldout(ws: Workspace, count: int, progress: bool = True) -> Path:
    """`data/synthetic_eval.jsonl`: held-out sentences in voices not used for training.

    For a workspace with a jargon list alone, this is the primary WER set. Training uses the best
    backend (piper or a cloned voice), so held-out clips come from espeak's held-out voices; when
    training itself runs on espeak, they come from piper.
    """
    terms = workspace_terms(ws)
    training = expected_backend(ws.config, voice_ref_path(ws))
    name = "piper" if training == "espeak" else "espeak"
    if unavailable_reason(name) is not None:
        name = "espeak"  # piper missing: espeak's held-out voices are disjoint from its training voices
    backend = build_backend(name, ws.config, heldout=True)
    seen = set().union(*(_manifest_texts(synthetic_manifest(ws, phase)) for phase in ("mini", "full")))
    sentences = generate_sentences(terms, count, seed=ws.config.synthesis.seed + HELDOUT_SEED_OFFSET,
                                   heldout=True, exclude=seen)
    result = render_sentences(ws, sentences, backend, ws.manifest(SYNTHETIC_EVAL), progress=progress)
    _store_summary(result)
    return result.manifest


def render_sentences(
    ws: Workspace, sentences: list[Sentence], backend: Synthesizer, manifest: Path, progress: bool = True
) -> SynthesisResult:
    """Render (or find in the cache) one clip per sentence and write the manifest of those that worked."""
    started = time.monotonic()
    out_dir = ws.data / SYNTHETIC_DIR
    identity = backend.identity()
    seed = ws.config.synthesis.seed
    jobs = [_plan(sentence, backend, identity, seed, out_dir) for sentence in sentences]
    result = SynthesisResult(manifest=manifest, backend=backend.backend, cloned=backend.cloned, voices=[],
                             requested=len(sentences), made=0, cached=0)
    todo = [job for job in jobs if not job.path.is_file()]
    result.cached = len(jobs) - len(todo)
    log.info("synthesize_start", backend=backend.backend, cloned=backend.cloned, clips=len(jobs),
             cached=result.cached, to_make=len(todo), workers=backend.workers)
    outcomes = _run_all(todo, backend, progress)
    clips: list[Clip] = []
    for job in jobs:
        outcome = outcomes.get(job.path)
        if isinstance(outcome, Failure):
            result.failures.append(outcome)
            continue
        clips.append(job.clip(backend))
        if outcome is not None:
            result.made += 1
            result.render_seconds += outcome
            result.new_audio_seconds += clips[-1].duration
    result.wall_seconds = round(time.monotonic() - started, 3)
    result.render_seconds = round(result.render_seconds, 3)
    result.new_audio_seconds = round(result.new_audio_seconds, 3)
    _check_failures(result, manifest)
    write_manifest(manifest, clips)
    result.audio_seconds = round(sum(c.duration for c in clips), 3)
    result.voices = sorted({c.speaker for c in clips})
    log.info("synthesize_done", **{k: v for k, v in result.to_dict().items() if k != "failures"},
             failed=len(result.failures))
    return result


@dataclass
class _Job:
    sentence: Sentence
    voice: Voice
    path: Path

    def clip(self, backend: Synthesizer) -> Clip:
        import soundfile as sf

        info = sf.info(str(self.path))
        return Clip(audio=self.path.resolve(), text=self.sentence.text, duration=round(info.frames / info.samplerate, 3),
                    speaker=self.voice.name, source="synthetic", id=self.path.stem,
                    extra={"backend": backend.backend, "cloned": backend.cloned, "terms": list(self.sentence.terms),
                           "spoken": self.sentence.spoken, "settings": self.voice.settings})


def _plan(sentence: Sentence, backend: Synthesizer, identity: str, seed: int, out_dir: Path) -> _Job:
    """The voice is drawn from a stream seeded by the sentence, so a re-run picks the same one."""
    voice = backend.pick_voice(random.Random(f"{seed}:{sentence.text}"))
    key = json.dumps([sentence.text, sentence.spoken, backend.backend, identity, voice.name, voice.settings],
                     sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return _Job(sentence=sentence, voice=voice, path=out_dir / f"{digest}.wav")


def _run_all(todo: list[_Job], backend: Synthesizer, progress: bool) -> dict[Path, float | Failure]:
    """Render every job (in parallel when the backend allows); returns seconds taken or the Failure."""
    outcomes: dict[Path, float | Failure] = {}
    if not todo:
        return outcomes
    with _ProgressBar(progress, len(todo), backend.backend) as advance:
        if backend.workers > 1:
            with ThreadPoolExecutor(max_workers=backend.workers) as pool:
                for job, outcome in zip(todo, pool.map(lambda j: _render_one(j, backend), todo)):
                    outcomes[job.path] = outcome
                    advance()
        else:
            for job in todo:
                outcomes[job.path] = _render_one(job, backend)
                advance()
    return outcomes


def _render_one(job: _Job, backend: Synthesizer) -> float | Failure:
    started = time.monotonic()
    try:
        audio = backend.render(job.sentence.spoken, job.voice)
        _check_audio(audio)
        write_wav(job.path, audio, SAMPLE_RATE)
    except Exception as e:  # one bad clip must not stop the others; it is reported with its sentence
        log.warning("clip_failed", text=job.sentence.text, voice=job.voice.name, error=f"{type(e).__name__}: {e}")
        return Failure(text=job.sentence.text, error=f"{type(e).__name__}: {e}")
    return time.monotonic() - started


def _check_audio(audio: np.ndarray) -> None:
    seconds = len(audio) / SAMPLE_RATE
    if not (MIN_SECONDS <= seconds <= MAX_SECONDS):
        raise SynthesisError(f"clip is {seconds:.2f} s long, outside {MIN_SECONDS}-{MAX_SECONDS} s")
    if not np.isfinite(audio).all() or float(np.abs(audio).max()) < 1e-3:
        raise SynthesisError("clip is silent or not finite")


def _check_failures(result: SynthesisResult, manifest: Path) -> None:
    if result.requested and len(result.failures) * 2 > result.requested:
        first = result.failures[0]
        raise SynthesisError(f"{manifest.name}: {len(result.failures)} of {result.requested} clips failed with "
                             f"{result.backend}; first: {first.text!r}: {first.error}")


class _ProgressBar:
    """A rich progress bar on a terminal; nothing (but the log) when `enabled` is False."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled, self.total, self.label = enabled, total, label

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.progress = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), transient=False)
        self.progress.start()
        task = self.progress.add_task(f"synthesizing ({self.label})", total=self.total)
        return lambda: self.progress.advance(task)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()


def _manifest_texts(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    clips, _ = read_manifest(path, allow_outside=True, check_audio=False)
    return {clip.text for clip in clips}


def _store_summary(result: SynthesisResult) -> None:
    summary = result.manifest.with_suffix(".stats.json")
    summary.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def workspace_terms(ws: Workspace) -> list[Term]:
    """The workspace's merged jargon list (`data/jargon.txt`, kept by the daemon)."""
    path = ws.jargon
    if not path.is_file():
        raise VocabdError(f"{path}: no jargon list yet; drop a .txt list of terms into {ws.inbox}, "
                          "then `vocabd ingest` (a running daemon takes it in by itself)")
    return parse_jargon(path)


def summary_text(result: SynthesisResult) -> str:
    """A few lines for the terminal: which backend made the audio, whether the voice was cloned, counts."""
    voice = "cloned from the user's voice sample" if result.cloned else "not cloned (no cloning backend here)"
    lines = [
        f"{result.manifest}: {result.clips} clips, {result.audio_seconds / 60:.1f} min",
        f"  backend {result.backend}, voice {voice}; voices: {', '.join(result.voices)}",
        f"  made {result.made}, from cache {result.cached}, failed {len(result.failures)} "
        f"in {result.wall_seconds:.1f} s" + (f" (real-time factor {result.real_time_factor})" if result.made else ""),
    ]
    lines += [f"  failed: {f.text!r}: {f.error}" for f in result.failures[:5]]
    return "\n".join(lines)
