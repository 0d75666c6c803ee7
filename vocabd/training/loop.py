"""The training loop, top to bottom: load, attach an adapter, train, evaluate on dev, checkpoint, resume.

One process per run, holding the run lock. Each eval interval writes `adapters/step-N/` (adapter +
optimizer/scheduler/RNG state), so a kill -9 loses at most one interval and `--resume` replays the
same batches from there.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator

import numpy as np

from vocabd.asr.identity import ModelIdentity
from vocabd.audio import SAMPLE_RATE
from vocabd.log import get_logger
from vocabd.training.anchor import build_anchor
from vocabd.training.augment import augment_batch
from vocabd.training.config import RunConfig
from vocabd.training.data import (MICRO_BATCH_SECONDS, Example, TrainData, batches_from, collate, micro_batches,
                                  prepare_data, run_steps)
from vocabd.training.heavy import HeavyLock, ThreadGovernor, heavy_worker, own_cpu_seconds
from vocabd.training.memory import HeapTrimmer, release_free_memory, resident_bytes, tune_allocator
from vocabd.training.pause import Pause, PauseWatch
from vocabd.training.run_folder import TRAINER_STATE, RunFolder
from vocabd.training.status import RunStatus, acquire_run_lock, write_status

log = get_logger(__name__)
HEARTBEAT_SECONDS = 1.0


@dataclass
class Best:
    """The checkpoint chosen for best/: lowest dev score (dev WER + weighted replay-dev WER), ties -> dev loss."""
    step: int | None = None
    score: float = math.inf
    dev_loss: float = math.inf

    def offer(self, step: int, score: float, dev_loss: float) -> bool:
        if (score, dev_loss) < (self.score, self.dev_loss):
            self.step, self.score, self.dev_loss = step, score, dev_loss
            return True
        return False


def run_experiment(folder: RunFolder, config: RunConfig, resume: bool = False, progress: bool = True) -> RunStatus:
    """Train one run to the end; on any error the run folder says what failed (status + FAILED.md)."""
    lock = acquire_run_lock(folder.root)
    status = RunStatus(pid=os.getpid(), max_steps=config.max_steps, started=time.time(), heartbeat=time.time())
    try:
        if not resume or not folder.config_file.exists():
            folder.write_config(config)
        folder.failed_file.unlink(missing_ok=True)
        tune_allocator()
        with heavy_worker(f"trainer {folder.name}", on_wait=_waiting_beat(folder, status)) as heavy:
            status.reason = ""
            return _train(folder, config, resume, status, progress, heavy)
    except BaseException as e:  # including KeyboardInterrupt: the folder must not claim "running"
        status.state, status.error, status.heartbeat = "failed", f"{type(e).__name__}: {e}", time.time()
        write_status(folder.root, status)
        folder.write_failed(f"training failed at step {status.step}", e,
                            f"fix the cause, then `vocabd run-experiment {folder.name} --resume`")
        log.error("run_failed", run=folder.name, step=status.step, error=status.error)
        raise
    finally:
        lock.close()


def _train(folder: RunFolder, config: RunConfig, resume: bool, status: RunStatus, progress: bool,
           heavy: HeavyLock) -> RunStatus:
    import torch

    from vocabd.asr.labels import DECODER_START_ID
    from vocabd.asr.model import load_asr
    from vocabd.training.adapter import attach_adapter, count_parameters

    _seed_everything(config.seed)
    write_status(folder.root, status)
    asr = load_asr(config.model, offline_fallback=config.offline_fallback)
    data = prepare_data(config)
    config = replace(config, max_steps=run_steps(data, config))  # config.json keeps the bound that was asked
    status.max_steps = config.max_steps
    for reason in data.skipped:
        log.warning("clip_skipped", run=folder.name, reason=reason)
    model = attach_adapter(asr.model, config)
    release_free_memory()  # DoRA's set-up (full-size weight copies for the norms) leaves freed heap behind
    trainable, total = count_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config.warmup_steps,
                                                                                 config.max_steps))
    labels: dict[str, list[int]] = {}
    best = Best()
    step = _restore(folder, asr.identity, model, optimizer, scheduler, best) if resume else None
    if step is None:
        step = 0
        folder.truncate_log(-1)
        folder.append_log({"event": "start", "step": 0, "trainable_params": trainable, "total_params": total,
                           "train_clips": len(data.train), "dev_clips": len(data.dev),
                           "replay_clips": len(data.replay), "replay_dev_clips": len(data.replay_dev),
                           "skipped": data.skipped, "steps": config.max_steps, "pid": os.getpid()})
        _evaluate_and_checkpoint(folder, config, asr, model, data, optimizer, scheduler, best, step, labels)
    else:
        folder.append_log({"event": "resume", "step": step, "pid": os.getpid()})
        status.step, status.best_step, status.best_dev_wer = step, best.step, _best_dev_wer(folder)
        write_status(folder.root, status)
    log.info("training", run=folder.name, from_step=step, max_steps=config.max_steps, trainable=trainable,
             train_clips=len(data.train), dev_clips=len(data.dev), replay=len(data.replay))

    anchor = build_anchor(asr, model, data.replay, config.kl_weight, config.seed, config.batch_size)
    model.train()
    batches = batches_from(data, config.batch_size, config.replay_ratio, config.seed, step)
    first_step, clock = step, time.monotonic()
    last_beat = 0.0
    threads, trimmer = ThreadGovernor(), HeapTrimmer()
    pauses = PauseWatch(config, threads)
    with _progress_bar(progress, config.max_steps, step) as advance:
        while step < config.max_steps:
            pause = pauses.due(threads.tick())
            if pause is not None:
                _pause(folder, asr.identity, model, optimizer, scheduler, best, step, status, heavy, pause)
                first_step, clock = step, time.monotonic()  # the pause is no part of the step time
            batch = augment_batch(next(batches), config.augment, config.seed, step)
            tick, cpu = time.monotonic(), own_cpu_seconds()
            extra = (lambda: anchor.loss(model, step, asr.tokenizer, DECODER_START_ID, labels)) if anchor else None
            loss, tokens = train_step(model, optimizer, scheduler, batch, asr.tokenizer, DECODER_START_ID, labels,
                                      extra)
            step += 1
            seconds = time.monotonic() - tick
            audio = sum(e.seconds for e in batch)
            rss = resident_bytes()  # after the step, before any trim: what it left resident
            trimmer.after_step(rss)
            folder.append_log({"event": "train", "step": step, "loss": round(loss, 5),
                               "lr": scheduler.get_last_lr()[0], "seconds": round(seconds, 3),
                               "cpu_seconds": round(own_cpu_seconds() - cpu, 3), "audio_s": round(audio, 2),
                               "clips_per_s": round(len(batch) / seconds, 2),
                               "audio_s_per_s": round(audio / seconds, 2), "tokens": tokens,
                               **({"rss_mb": round(rss / 2**20)} if rss else {}),
                               **({"kl": round(anchor.last, 5)} if anchor else {})})
            per_step = (time.monotonic() - clock) / (step - first_step)
            status.step, status.loss, status.seconds_per_step = step, loss, per_step
            status.eta_seconds = per_step * (config.max_steps - step)
            if step % config.eval_interval == 0 or step == config.max_steps:
                _evaluate_and_checkpoint(folder, config, asr, model, data, optimizer, scheduler, best, step, labels)
                status.best_step, status.best_dev_wer = best.step, _best_dev_wer(folder)
                release_free_memory()
            if time.monotonic() - last_beat > HEARTBEAT_SECONDS or step == config.max_steps:
                status.heartbeat, last_beat = time.time(), time.monotonic()
                write_status(folder.root, status)
            advance(step, loss)
    status.state, status.eta_seconds, status.heartbeat = "finished", 0.0, time.time()
    write_status(folder.root, status)
    folder.append_log({"event": "finished", "step": step, "best_step": best.step})
    log.info("run_finished", run=folder.name, best_step=best.step, best_dev_wer=status.best_dev_wer)
    return status


def lr_factor(step: int, warmup: int, max_steps: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, max_steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def token_loss(model: Any, batch: dict) -> tuple[Any, int]:
    """Mean cross-entropy per label token. Logits at position t already predict labels[t] (collate shifted
    the decoder input once), so no further shift here; the model never sees `labels`."""
    import torch.nn.functional as F

    out = model(input_values=batch["input_values"], attention_mask=batch["attention_mask"],
                decoder_input_ids=batch["decoder_input_ids"], decoder_attention_mask=batch["decoder_attention_mask"])
    targets = batch["labels"]
    loss = F.cross_entropy(out.logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
    return loss, int((targets != -100).sum())


def train_step(model, optimizer, scheduler, examples: list[Example], tokenizer, start_id: int,
               labels: dict, extra_loss=None) -> tuple[float, int]:
    """One optimizer step; the gradient of `extra_loss()` (the anchor's KL, training/anchor.py) is added to the
    cross-entropy's, while the returned loss is the cross-entropy alone."""
    import torch

    loss, tokens = backward_in_parts(model, examples, tokenizer, start_id, labels)
    if extra_loss is not None:  # a second backward: gradients add up before the step
        extra_loss().backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss, tokens


def backward_in_parts(model, examples: list[Example], tokenizer, start_id: int, labels: dict,
                      max_seconds: float = MICRO_BATCH_SECONDS) -> tuple[float, int]:
    """Gradients of the batch's token-weighted mean loss, summed over micro-batches of at most `max_seconds`
    padded audio: the same gradients as one pass, with a fraction of the activation memory.
    Returns (mean loss, label tokens)."""
    parts = [collate(part, tokenizer, start_id, labels) for part in micro_batches(examples, max_seconds)]
    total = sum(int((part["labels"] != -100).sum()) for part in parts)
    summed = 0.0
    for part in parts:
        # a clip longer than the cap is a part alone: its layers keep only their inputs and are recomputed in
        # backward (about a third more time for that clip, a fraction of its activation memory)
        with _recomputed(model, part["input_values"].shape[1] / SAMPLE_RATE > max_seconds):
            loss, tokens = token_loss(model, part)
            (loss * (tokens / total)).backward()
        summed += float(loss.detach()) * tokens
        del loss
    return summed / total, total


@contextmanager
def _recomputed(model, enabled: bool) -> Iterator[None]:
    """Activation checkpointing of every transformer layer while inside, when `enabled`."""
    if not enabled:
        yield
        return
    base = model.get_base_model()
    base.activation_checkpointing_enable()
    try:
        yield
    finally:
        base.activation_checkpointing_disable()


def mean_loss(model: Any, examples: list[Example], tokenizer, start_id: int, labels: dict,
              batch_size: int) -> float | None:
    """Token-weighted mean loss over `examples` (no gradients, dropout off)."""
    import torch

    if not examples:
        return None
    total, count = 0.0, 0
    ordered = sorted(examples, key=lambda e: e.samples)
    with torch.no_grad():
        for start in range(0, len(ordered), batch_size):
            loss, tokens = token_loss(model, collate(ordered[start : start + batch_size], tokenizer, start_id,
                                                     labels))
            total += float(loss) * tokens
            count += tokens
    return total / count


def evaluate_split(asr, model, examples: list[Example], labels: dict, batch_size: int) -> dict[str, float | None]:
    """Loss and WER (normalized and raw) of the adapted model on held-out clips."""
    from vocabd.asr.labels import DECODER_START_ID
    from vocabd.asr.transcribe import transcribe
    from vocabd.scoring.metrics import wer

    if not examples:
        return {"loss": None, "wer": None, "wer_raw": None}
    loss = mean_loss(model, examples, asr.tokenizer, DECODER_START_ID, labels, batch_size)
    # the PEFT layers sit inside the wrapped model, so its own generate() runs with the adapter active
    hyps = transcribe(replace(asr, model=model.get_base_model()), [e.audio for e in examples], batch_size)
    refs = [e.text for e in examples]
    return {"loss": loss, "wer": wer(refs, hyps, normalized=True), "wer_raw": wer(refs, hyps)}


@contextmanager
def evaluation_mode(model) -> Iterator[None]:
    """Eval mode for a dev evaluation, then back to training mode. (DoRA's weight norms are computed once per
    weight update by `training.dora`, so generation does not rebuild them on every token.)"""
    model.eval()
    try:
        yield
    finally:
        model.train()


def _evaluate_and_checkpoint(folder: RunFolder, config: RunConfig, asr, model, data: TrainData, optimizer,
                             scheduler, best: Best, step: int, labels: dict) -> None:
    tick = time.monotonic()
    release_free_memory()  # what training freed goes back first: the evaluation's tensors have other shapes
    with evaluation_mode(model):
        dev = evaluate_split(asr, model, data.dev, labels, config.batch_size)
        replay = evaluate_split(asr, model, data.replay_dev, labels, config.batch_size)
    score = dev["wer"] + config.replay_weight * (replay["wer"] or 0.0)
    improved = best.offer(step, score, dev["loss"])

    _save_checkpoint(folder, model, optimizer, scheduler, best, step, asr.identity)
    if improved:
        folder.promote_best(step, {"dev_wer": dev["wer"], "dev_loss": dev["loss"], "replay_dev_wer": replay["wer"],
                                   "score": score, "model": asr.identity.name, "base_model": asr.identity.to_dict()})
    event = {"event": "eval", "step": step, "dev_wer": dev["wer"], "dev_wer_raw": dev["wer_raw"],
             "dev_loss": dev["loss"], "replay_dev_wer": replay["wer"], "replay_dev_wer_raw": replay["wer_raw"],
             "replay_dev_loss": replay["loss"], "score": score, "best_step": best.step,
             "seconds": round(time.monotonic() - tick, 2)}
    folder.append_log(event)
    log.info("eval", run=folder.name, **{k: v for k, v in event.items() if k != "event"})


def _save_checkpoint(folder: RunFolder, model, optimizer, scheduler, best: Best, step: int, base: ModelIdentity) -> None:
    """adapters/step-N/: the adapter plus the trainer state (plain tensors and numbers: see load_trainer_state)."""
    import torch

    from vocabd.training.adapter import save_adapter

    def write(tmp):
        save_adapter(model, tmp, base)
        torch.save({"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(), "best": asdict(best)}, tmp / TRAINER_STATE)

    folder.save_checkpoint(step, write)


def _pause(folder: RunFolder, base: ModelIdentity, model, optimizer, scheduler, best: Best, step: int,
           status: RunStatus, heavy: HeavyLock, pause: Pause) -> None:
    """Checkpoint, let go of the machine and wait while `pause` holds; a run killed meanwhile resumes from here."""
    if folder.latest_checkpoint() != step:
        _save_checkpoint(folder, model, optimizer, scheduler, best, step, base)
    heavy.release()
    release_free_memory()
    folder.append_log({"event": "paused", "step": step, "reason": pause.reason})
    log.info("training_paused", run=folder.name, step=step, reason=pause.reason, note=pause.note)
    status.reason = pause.note
    since = time.monotonic()
    _wait_while(pause, folder, status)
    heavy.acquire(_waiting_beat(folder, status))
    status.reason, status.heartbeat = "", time.time()
    write_status(folder.root, status)
    seconds = round(time.monotonic() - since, 1)
    folder.append_log({"event": "resumed", "step": step, "reason": pause.reason, "paused_seconds": seconds})
    log.info("training_resumed", run=folder.name, step=step, reason=pause.reason, paused_seconds=seconds)


def _wait_while(pause: Pause, folder: RunFolder, status: RunStatus) -> None:
    """Beat the heart (a paused run is alive, not stalled) until `pause` no longer holds."""
    while True:
        status.heartbeat = time.time()
        write_status(folder.root, status)
        time.sleep(pause.every)
        if not pause.holds():
            return


def _waiting_beat(folder: RunFolder, status: RunStatus):
    """While the run waits for the heavy lock it is alive, not stalled: say so in status.json."""
    last = [0.0]

    def beat(holder: str) -> None:
        if time.monotonic() - last[0] >= HEARTBEAT_SECONDS * 5:
            last[0] = time.monotonic()
            status.reason, status.heartbeat = f"waiting for another torch worker to finish ({holder})", time.time()
            write_status(folder.root, status)

    return beat


def _restore(folder: RunFolder, base: ModelIdentity, model, optimizer, scheduler, best: Best) -> int | None:
    """Load the latest complete checkpoint; returns its step (None: nothing to resume, start fresh)."""
    import torch

    from vocabd.training.adapter import restore_adapter

    step = folder.latest_checkpoint()
    if step is None:
        return None
    ckpt = folder.step_dir(step)
    restore_adapter(model, ckpt, base)
    state = load_trainer_state(ckpt / TRAINER_STATE)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    best.step, best.score, best.dev_loss = (state["best"][k] for k in ("step", "score", "dev_loss"))
    folder.drop_checkpoints_after(step)
    folder.truncate_log(step)
    log.info("resumed", run=folder.name, step=step)
    return step


def load_trainer_state(path) -> dict:
    """The optimizer/scheduler/RNG state of a checkpoint: plain tensors, numbers, lists and dicts only.

    `weights_only=True` refuses any pickled object beyond those, so a crafted file in the run folder cannot
    run code here."""
    import pickle

    import torch

    from vocabd.errors import VocabdError

    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise VocabdError(f"{path}: not a plain trainer state, refused ({str(e).splitlines()[0]})") from e
    missing = {"step", "optimizer", "scheduler", "torch_rng", "best"} - set(state if isinstance(state, dict) else ())
    if missing:
        raise VocabdError(f"{path}: trainer state lacks {sorted(missing)}")
    return state


def _best_dev_wer(folder: RunFolder) -> float | None:
    info = folder.best_info()
    return info.get("dev_wer") if info else None


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _progress_bar:
    """A rich progress bar on a terminal; silent in the background (stdout goes to a file)."""

    def __init__(self, enabled: bool, total: int, done: int):
        self.enabled = enabled and sys.stderr.isatty()
        self.total, self.done = total, done

    def __enter__(self):
        if not self.enabled:
            return lambda step, loss: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                            TimeRemainingColumn(), transient=False)
        self.bar.start()
        task = self.bar.add_task("train", total=self.total, completed=self.done, loss="-")
        return lambda step, loss: self.bar.update(task, completed=step, loss=f"{loss:.3f}")

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False
