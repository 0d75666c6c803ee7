"""The offline general-speech pool: vocabd's own sentences in many synthetic voices, built once and cached.

Replay: each replay sentence twice, once by piper's `joe` voice (speaking rate and noise varied) and once by
an espeak-ng voice of REPLAY_ESPEAK; yardstick: each held-out sentence twice in voices of YARDSTICK_ESPEAK,
used by nothing else (not the replay, not the jargon synthesizer's espeak voices). Every clip gets its own
tempo/pitch perturbation (a resampling by 0.9-1.1). Without piper both replay takes are espeak.
"""

from __future__ import annotations

import hashlib
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vocabd.audio import SAMPLE_RATE, write_wav
from vocabd.errors import VocabdError
from vocabd.general.texts import split_texts
from vocabd.log import get_logger
from vocabd.manifest import MAX_SECONDS, MIN_SECONDS, Clip, write_manifest
from vocabd.tts import Synthesizer, Voice, unavailable_reason

log = get_logger(__name__)

FORMAT_VERSION = 1  # bump when what a pool holds changes, so old caches are rebuilt
REPLAY_ESPEAK = ("en-us+m5", "en-us+m7", "en-us+f1", "en-us+f5", "en-gb+m5", "en-gb+f1", "en-gb-x-rp+m2",
                 "en-gb-x-gbclan+m3")
YARDSTICK_ESPEAK = ("en-us+m8", "en-gb+m6", "en-gb-x-rp+m5", "en-us-nyc+f3")
YARDSTICK_TAKES = 2  # each held-out sentence in two yardstick voices: more words to measure with
SPEED_RANGE = (0.9, 1.1)  # tempo and pitch together, by resampling
FAILURES_ALLOWED = 0.2


@dataclass(frozen=True)
class Job:
    """One clip to make: which side, what to say, who says it and how fast."""
    part: str  # replay | yardstick
    text: str
    synth: str  # key of the synthesizers dict
    voice: Voice
    speed: float

    def clip_id(self) -> str:
        key = f"{FORMAT_VERSION}|{self.part}|{self.text}|{self.voice.name}|{sorted(self.voice.settings.items())}|{self.speed}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def synthesizers(workers: int) -> dict[str, Synthesizer]:
    """espeak-ng voices for both sides, plus piper for the replay when it is installed."""
    from vocabd.tts.espeak import EspeakSynthesizer

    reason = unavailable_reason("espeak")
    if reason:
        raise VocabdError(f"cannot build the general-speech pool: {reason}")
    synths: dict[str, Synthesizer] = {
        "espeak-replay": EspeakSynthesizer(voices=REPLAY_ESPEAK, workers=workers),
        "espeak-yardstick": EspeakSynthesizer(voices=YARDSTICK_ESPEAK, workers=workers),
    }
    if unavailable_reason("piper") is None:
        from vocabd.tts.piper import PiperSynthesizer

        synths["piper"] = PiperSynthesizer(workers=workers)
    return synths


def plan(sentences: list[str], synths: dict[str, Synthesizer], seed: int = 0) -> list[Job]:
    """Every clip of the pool, each with its voice and speed chosen by a per-clip seeded random stream."""
    replay, yardstick = split_texts(sentences)
    replay_synths = ["piper" if "piper" in synths else "espeak-replay", "espeak-replay"]
    jobs = []
    for i, text in enumerate(replay):
        for take, name in enumerate(replay_synths):
            jobs.append(_job("replay", text, name, synths[name], random.Random(f"{seed}:replay:{i}:{take}")))
    for i, text in enumerate(yardstick):
        for take in range(YARDSTICK_TAKES):
            jobs.append(_job("yardstick", text, "espeak-yardstick", synths["espeak-yardstick"],
                             random.Random(f"{seed}:yardstick:{i}:{take}")))
    return jobs


def _job(part: str, text: str, name: str, synth: Synthesizer, rng: random.Random) -> Job:
    voice = synth.pick_voice(rng)
    return Job(part, text, name, voice, round(rng.uniform(*SPEED_RANGE), 3))


def perturb(audio: np.ndarray, speed: float) -> np.ndarray:
    """Play `speed` times faster (shorter and higher) by resampling."""
    import soxr

    if speed == 1.0 or not len(audio):
        return audio
    return soxr.resample(audio, SAMPLE_RATE * speed, SAMPLE_RATE).astype(np.float32)


def pool_key(sentences: list[str], synths: dict[str, Synthesizer], seed: int = 0) -> str:
    """Names the cache folder: the texts, the voices' identities, the voice lists and the format."""
    digest = hashlib.sha256(f"{FORMAT_VERSION}|{seed}|{REPLAY_ESPEAK}|{YARDSTICK_ESPEAK}|{SPEED_RANGE}".encode())
    for name in sorted(synths):
        digest.update(f"|{name}={synths[name].identity()}".encode())
    digest.update("\n".join(sentences).encode("utf-8"))
    return digest.hexdigest()[:16]


def build_synthetic_pool(dest: Path, sentences: list[str], synths: dict[str, Synthesizer], workers: int = 2,
                         progress: bool = True, seed: int = 0) -> dict:
    """Render the pool into `dest` (clips/, replay.jsonl, yardstick.jsonl); returns its description."""
    jobs = plan(sentences, synths, seed)
    clips_dir = dest / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    log.info("general_pool_building", kind="synthetic", clips=len(jobs), folder=str(dest))
    made: dict[str, list[Clip]] = {"replay": [], "yardstick": []}
    failures: list[str] = []

    def render(job: Job) -> Clip | str:
        try:
            audio = perturb(synths[job.synth].render(job.text, job.voice), job.speed)
        except Exception as e:  # one bad clip is reported, not fatal
            return f"{job.voice.name}: {job.text!r}: {e}"
        seconds = len(audio) / SAMPLE_RATE
        if not MIN_SECONDS <= seconds <= MAX_SECONDS:
            return f"{job.voice.name}: {job.text!r}: {seconds:.1f} s is outside {MIN_SECONDS}-{MAX_SECONDS} s"
        path = clips_dir / f"{job.clip_id()}.wav"
        write_wav(path, audio, SAMPLE_RATE)
        return Clip(audio=path, text=job.text, duration=round(seconds, 3), speaker=job.voice.name,
                    source="general", id=path.stem, extra={"speed": job.speed, **job.voice.settings})

    with _progress(progress, len(jobs)) as advance, ThreadPoolExecutor(max(1, workers)) as pool:
        for n, (job, out) in enumerate(zip(jobs, pool.map(render, jobs)), start=1):
            if isinstance(out, str):
                failures.append(out)
            else:
                made[job.part].append(out)
            advance(n)
            if n % 50 == 0 or n == len(jobs):
                log.info("general_pool_progress", done=n, total=len(jobs), failed=len(failures),
                         seconds=round(time.monotonic() - start, 1))
    if len(failures) > FAILURES_ALLOWED * len(jobs) or not made["replay"] or not made["yardstick"]:
        raise VocabdError(f"general-speech pool: {len(failures)} of {len(jobs)} clips failed, e.g. {failures[:3]}")
    for part, clips in made.items():
        write_manifest(dest / f"{part}.jsonl", clips)
    wall = time.monotonic() - start
    log.info("general_pool_built", kind="synthetic", clips=len(jobs) - len(failures), failed=len(failures),
             seconds=round(wall, 1))
    return {
        "kind": "synthetic", "real": False,
        "what": "vocabd's own general sentences (written for the project) in synthetic voices: "
                + ("piper joe (rate and noise varied) and " if "piper" in synths else "")
                + "espeak-ng voices, each clip tempo/pitch-perturbed",
        "build_seconds": round(wall, 1), "failures": failures[:10],
        "replay": describe(made["replay"]), "yardstick": describe(made["yardstick"]),
    }


def describe(clips: list[Clip]) -> dict:
    return {"clips": len(clips), "words": sum(len(c.text.split()) for c in clips),
            "minutes": round(sum(c.duration or 0.0 for c in clips) / 60, 2),
            "speakers": sorted({c.speaker for c in clips}), "texts": len({c.text for c in clips})}


class _progress:
    """A rich progress bar on a terminal; silent in the daemon (which logs general_pool_progress)."""

    def __init__(self, enabled: bool, total: int):
        import sys

        self.enabled, self.total = enabled and sys.stderr.isatty(), total

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda done: None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.start()
        task = self.bar.add_task("general-speech pool", total=self.total)
        return lambda done: self.bar.update(task, completed=done)

    def __exit__(self, *exc) -> bool:
        if self.enabled:
            self.bar.stop()
        return False
