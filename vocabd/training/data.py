"""Training data: the dev split, replay sampling, length-bucketed batches and their tensors.

Every choice is a pure function of the seed and the step, so a resumed run sees the same batches.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from vocabd.audio import load_audio
from vocabd.errors import VocabdError
from vocabd.manifest import MAX_SECONDS, Clip, audio_root, load_manifest
from vocabd.training.config import RunConfig

BUCKET_BATCHES = 16  # a shuffled window of this many batches is sorted by length before it is cut
MIN_TRAIN_CLIPS = 2
# Padded audio per step's batch: bounds the time of one step (a batch of 30 s clips has fewer of them).
MAX_BATCH_SECONDS = 160.0
# Padded audio per forward/backward pass. The activations kept for backward grow with it (about 50 MB per
# padded second on Moonshine base), so a step's batch is split into parts of at most this much audio and
# their gradients are summed: peak memory no longer depends on how long the batch's clips are.
MICRO_BATCH_SECONDS = 16.0
# The fewest steps `max_epochs` cuts a run to. A jargon list alone makes about 90 batches a pass; 300 steps is what
# was measured for it (promoted, recall 0.68-0.72 on a judge it never saw; docs/benchmark-log.md, 2026-12-02).
MIN_EPOCH_CAPPED_STEPS = 300
PCM_SCALE = 32768.0  # int16 full scale


@dataclass
class Example:
    pcm: np.ndarray  # int16 mono 16 kHz: half the memory of float32 for the whole training set
    text: str
    id: str
    source: str  # real | synthetic | replay

    @property
    def audio(self) -> np.ndarray:
        """float32 in [-1, 1), as the model takes it."""
        return self.pcm.astype(np.float32) / PCM_SCALE

    @property
    def samples(self) -> int:
        return len(self.pcm)

    @property
    def seconds(self) -> float:
        return self.samples / 16000


def to_pcm(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * PCM_SCALE), -PCM_SCALE, PCM_SCALE - 1).astype(np.int16)


@dataclass
class TrainData:
    train: list[Example]
    dev: list[Example]
    replay: list[Example]  # the replay pool sampled into training batches
    replay_dev: list[Example]  # held-out general speech watched during training
    skipped: list[str] = field(default_factory=list)  # clips left out of training, each with its reason


def load_examples(manifest: Path, allow_outside: bool, source: str | None = None,
                  skipped: list[str] | None = None, workspace: str = "") -> list[Example]:
    """Every clip of the manifest; with `skipped`, clips longer than Moonshine's 30 s go there instead.

    Audio must stay inside the workspace when the manifest lies in `workspace`, else inside the
    manifest's own folder, unless `allow_outside`."""
    root = audio_root(Path(manifest), Path(workspace) if workspace else None)
    clips = load_manifest(Path(manifest), root=root, allow_outside=allow_outside, check_audio=False)
    loaded: dict[Path, np.ndarray] = {}  # a clip repeated in the manifest (oversampled) is held once
    examples = [_example(c, source, loaded) for c in clips]
    if skipped is None:
        return examples
    kept = []
    for e in examples:
        if e.seconds > MAX_SECONDS:
            skipped.append(f"{manifest}: {e.id}: {e.seconds:.1f} s is longer than {MAX_SECONDS:.0f} s")
        else:
            kept.append(e)
    return kept


def _example(clip: Clip, source: str | None, loaded: dict[Path, np.ndarray]) -> Example:
    if clip.audio not in loaded:
        loaded[clip.audio] = to_pcm(load_audio(clip.audio))
    return Example(pcm=loaded[clip.audio], text=clip.text, id=clip.id or clip.audio.stem,
                   source=source or clip.source)


def prepare_data(config: RunConfig) -> TrainData:
    """Read the manifests and carve the held-out parts (deterministic for a given seed)."""
    skipped: list[str] = []
    outside, workspace = config.allow_outside, config.workspace
    train = load_examples(Path(config.train), outside, skipped=skipped, workspace=workspace)
    if config.dev:
        dev = load_examples(Path(config.dev), outside, workspace=workspace)
    else:
        train, dev = split_dev(train, config.dev_fraction, config.dev_max_clips, config.seed)
    if len(train) < MIN_TRAIN_CLIPS:
        raise VocabdError(f"{config.train}: only {len(train)} training clip(s) after the dev split")
    replay, replay_dev = [], []
    if config.replay:
        pool = load_examples(Path(config.replay), outside, source="replay", skipped=skipped, workspace=workspace)
        replay_dev, replay = _take_held_out(pool, min(config.replay_dev_clips, len(pool) // 5), config.seed)
        if config.replay_ratio > 0 and not replay:
            raise VocabdError(f"{config.replay}: too few clips to replay")
    return TrainData(train=train, dev=dev, replay=replay, replay_dev=replay_dev, skipped=skipped)


def split_dev(examples: list[Example], fraction: float, max_clips: int, seed: int) -> tuple[list, list]:
    """(train, dev): about `fraction` of the clips, at least 1, at most `max_clips`, chosen by hash of id."""
    count = min(max_clips, max(1, round(len(examples) * fraction)))
    if len(examples) < 2 + count:
        raise VocabdError(f"{len(examples)} clip(s) are too few to carve a dev split; give --dev MANIFEST")
    dev, train = _take_held_out(examples, count, seed)
    return train, dev


def _take_held_out(examples: list[Example], count: int, seed: int) -> tuple[list, list]:
    """(held_out, rest), picked by a stable hash so the split never depends on file order."""
    def key(e: Example) -> str:
        return hashlib.sha1(f"{seed}:{e.id}:{e.text}".encode()).hexdigest()

    ranked = sorted(range(len(examples)), key=lambda i: key(examples[i]))
    chosen = set(ranked[:count])
    held = [e for i, e in enumerate(examples) if i in chosen]
    rest = [e for i, e in enumerate(examples) if i not in chosen]
    return held, rest


def replay_count(n_train: int, ratio: float) -> int:
    """Replay clips per epoch so that they make up `ratio` of what the model sees."""
    return round(n_train * ratio / (1.0 - ratio)) if ratio > 0 else 0


def epoch_batches(data: TrainData, batch_size: int, ratio: float, seed: int, epoch: int) -> list[list[Example]]:
    """One epoch: all training clips plus a fresh replay sample, bucketed by length, batches shuffled."""
    rng = random.Random(seed * 1_000_003 + epoch)
    pool = list(data.train)
    wanted = replay_count(len(data.train), ratio)
    if wanted and data.replay:
        if wanted <= len(data.replay):
            pool += rng.sample(data.replay, wanted)
        else:
            pool += [rng.choice(data.replay) for _ in range(wanted)]
    rng.shuffle(pool)
    batches = []
    window = batch_size * BUCKET_BATCHES
    for start in range(0, len(pool), window):
        batches += cut_batches(sorted(pool[start : start + window], key=lambda e: e.samples), batch_size)
    rng.shuffle(batches)
    return batches


def cut_batches(ordered: list[Example], batch_size: int,
                max_seconds: float = MAX_BATCH_SECONDS) -> list[list[Example]]:
    """Consecutive clips (sorted by length) into batches of `batch_size`, fewer when their padded audio
    would pass `max_seconds`."""
    batches: list[list[Example]] = [[]]
    for e in ordered:
        current = batches[-1]
        if current and (len(current) == batch_size or (len(current) + 1) * e.seconds > max_seconds):
            batches.append(current := [])
        current.append(e)
    return [b for b in batches if b]


def micro_batches(batch: list[Example], max_seconds: float = MICRO_BATCH_SECONDS) -> list[list[Example]]:
    """One step's batch as parts of at most `max_seconds` padded audio each (a clip longer than that alone)."""
    return cut_batches(sorted(batch, key=lambda e: e.samples), len(batch), max_seconds)


def run_steps(data: TrainData, config: RunConfig) -> int:
    """The run's length: `max_steps`, or fewer where `max_epochs` passes over the data end sooner (but not
    fewer than MIN_EPOCH_CAPPED_STEPS)."""
    if config.max_epochs <= 0:
        return config.max_steps
    per_epoch = len(epoch_batches(data, config.batch_size, config.replay_ratio, config.seed, 0))
    return min(config.max_steps, max(MIN_EPOCH_CAPPED_STEPS, math.ceil(config.max_epochs * per_epoch)))


def batches_from(data: TrainData, batch_size: int, ratio: float, seed: int, step: int) -> Iterator[list[Example]]:
    """The batches for steps `step`, `step`+1, ... (0-based), endlessly; resuming skips the epochs done."""
    epoch, skip = 0, step
    while True:
        batches = epoch_batches(data, batch_size, ratio, seed, epoch)
        if skip >= len(batches):
            skip -= len(batches)
        else:
            yield from batches[skip:]
            skip = 0
        epoch += 1


def collate(examples: list[Example], tokenizer: Any, start_id: int, label_cache: dict[str, list[int]]) -> dict:
    """Tensors for one batch. labels = text ids + eos (padding -100); decoder input = [start] + labels[:-1].

    The shift happens here, once: the loss in `loop` compares logits[t] with labels[t] directly.
    """
    import torch

    from vocabd.asr.labels import encode_labels

    labels = []
    for e in examples:
        if e.text not in label_cache:
            label_cache[e.text] = encode_labels(tokenizer, e.text)
        labels.append(label_cache[e.text])
    longest_audio = max(e.samples for e in examples)
    longest_text = max(len(ids) for ids in labels)
    values = torch.zeros(len(examples), longest_audio)
    audio_mask = torch.zeros(len(examples), longest_audio, dtype=torch.long)
    pad_id = tokenizer.eos_token_id
    decoder_ids = torch.full((len(examples), longest_text), pad_id, dtype=torch.long)
    decoder_mask = torch.zeros(len(examples), longest_text, dtype=torch.long)
    targets = torch.full((len(examples), longest_text), -100, dtype=torch.long)
    for row, (e, ids) in enumerate(zip(examples, labels)):
        values[row, : e.samples] = torch.from_numpy(e.audio)
        audio_mask[row, : e.samples] = 1
        decoder_ids[row, : len(ids)] = torch.tensor([start_id] + ids[:-1])
        decoder_mask[row, : len(ids)] = 1
        targets[row, : len(ids)] = torch.tensor(ids)
    return {"input_values": values, "attention_mask": audio_mask, "decoder_input_ids": decoder_ids,
            "decoder_attention_mask": decoder_mask, "labels": targets}
