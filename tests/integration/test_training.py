"""Training experiments on a tiny random Moonshine: run folder, resume after kill -9, DoRA/LoRA, poll."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tiny import speech_wav
from vocabd.cli import main
from vocabd.training.config import RunConfig
from vocabd.training.run_folder import RunFolder
from vocabd.training.status import RunStatus, acquire_run_lock, read_status, write_status

TEXTS = ["hello world", "press one", "the pound key", "voice mail", "call forward", "agent login", "conference",
         "please hold", "good morning", "dial again", "star key", "goodbye", "thank you", "main menu"]
FAST = ["--max-epochs", "0", "--batch-size", "4", "--lr", "0.01", "--warmup-steps", "2", "--eval-interval", "10"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Real espeak speech: a training manifest and a replay manifest."""
    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for i, text in enumerate(TEXTS):
        speech_wav(root / f"c{i}.wav", text, voice="en-us+f3" if i % 2 else "en-us")
        rows.append(json.dumps({"audio": f"c{i}.wav", "text": text.capitalize() + ".", "id": f"c{i}"}))
    (root / "train.jsonl").write_text("\n".join(rows[:11]) + "\n")
    (root / "replay.jsonl").write_text("\n".join(rows[6:]) + "\n")
    return {"train": root / "train.jsonl", "replay": root / "replay.jsonl"}


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def train_events(run: Path, kind: str = "train") -> list[dict]:
    return [e for e in RunFolder(run).read_log() if e["event"] == kind]


def test_daemon_side_modules_do_not_import_torch():
    code = ("import sys, vocabd.cli, vocabd.training.status, vocabd.training.launch, vocabd.training.poll, "
            "vocabd.training.cli_run, vocabd.training.options, vocabd.training.phase; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_labels_are_shifted_exactly_once(tiny_model, corpus):
    import torch

    from vocabd.asr.labels import DECODER_START_ID, encode_labels
    from vocabd.asr.model import load_asr
    from vocabd.training.data import load_examples, collate
    from vocabd.training.loop import token_loss

    asr = load_asr(tiny_model)
    examples = load_examples(corpus["train"], allow_outside=False)[:3]
    batch = collate(examples, asr.tokenizer, DECODER_START_ID, {})
    for row, e in enumerate(examples):
        ids = encode_labels(asr.tokenizer, e.text)
        n = len(ids)
        assert ids[-1] == asr.tokenizer.eos_token_id
        assert batch["labels"][row, :n].tolist() == ids
        assert batch["decoder_input_ids"][row, :n].tolist() == [DECODER_START_ID] + ids[:-1]
        assert (batch["labels"][row, n:] == -100).all()
        assert batch["decoder_attention_mask"][row].sum() == n
    ours, tokens = token_loss(asr.model, batch)
    assert tokens == sum(len(encode_labels(asr.tokenizer, e.text)) for e in examples)
    # given our decoder input and labels, transformers' own loss must agree: it does not shift a second time
    with torch.no_grad():
        theirs = asr.model(**batch).loss
    assert float(ours.detach()) == pytest.approx(float(theirs), rel=1e-5)


def test_dev_split_and_batches_are_deterministic_and_resumable(corpus):
    from vocabd.training.data import TrainData, batches_from, load_examples, split_dev

    clips = load_examples(corpus["train"], allow_outside=False)
    train, dev = split_dev(clips, 0.2, 40, seed=0)
    assert len(dev) == 2 and not {e.id for e in dev} & {e.id for e in train}
    assert {e.id for e in split_dev(list(reversed(clips)), 0.2, 40, seed=0)[1]} == {e.id for e in dev}
    replay = load_examples(corpus["replay"], allow_outside=False, source="replay")
    data = TrainData(train=train, dev=dev, replay=replay, replay_dev=[])
    stream = batches_from(data, 3, 0.25, seed=1, step=0)
    first = [[e.id for e in next(stream)] for _ in range(12)]
    later = batches_from(data, 3, 0.25, seed=1, step=7)
    assert [[e.id for e in next(later)] for _ in range(5)] == first[7:]
    sources = [e.source for _ in range(30) for e in next(stream)]
    assert 0.1 < sources.count("replay") / len(sources) < 0.4


def test_twenty_step_run_writes_every_run_folder_file(ws, tiny_model, corpus):
    code, out = cli("run-experiment", "r20", "-w", str(ws.root), "--train", str(corpus["train"]), "--model",
                    str(tiny_model), "--max-steps", "20", *FAST, "--replay", str(corpus["replay"]),
                    "--replay-ratio", "0.3")
    assert code == 0, out
    run = ws.run_dir("r20")
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == str(tiny_model) and config["max_steps"] == 20 and config["replay_ratio"] == 0.3
    steps = train_events(run)
    assert [e["step"] for e in steps] == list(range(1, 21))
    assert all(e["loss"] > 0 and e["lr"] > 0 and e["clips_per_s"] > 0 for e in steps)
    assert sum(e["loss"] for e in steps[-5:]) < sum(e["loss"] for e in steps[:5])
    evals = train_events(run, "eval")
    assert [e["step"] for e in evals] == [0, 10, 20]
    assert all(0 <= e["dev_wer"] and e["replay_dev_wer"] is not None for e in evals)
    assert sorted(p.name for p in (run / "adapters").iterdir()) == ["step-0", "step-10", "step-20"]
    best = json.loads((run / "best" / "best.json").read_text())
    assert best["step"] in (0, 10, 20) and (run / "best" / "adapter_model.safetensors").is_file()
    status = read_status(run)
    assert (status.state, status.step, status.max_steps) == ("finished", 20, 20)
    code, out = cli("poll", "r20", "-w", str(ws.root))
    assert code == 0 and "FINISHED" in out and "step 20/20" in out
    code, out = cli("run-experiment", "r20", "-w", str(ws.root), "--train", str(corpus["train"]))
    assert code == 1 and "already exists" in out


@pytest.mark.parametrize("use_dora", [True, False])
def test_dora_and_lora_train_and_load_for_transcription(ws, tiny_model, corpus, use_dora):
    import torch

    from vocabd.asr.model import load_asr
    from vocabd.asr.transcribe import transcribe
    from vocabd.audio import load_audio
    from vocabd.training.data import collate, load_examples
    from vocabd.training.loop import run_experiment

    name = "dora" if use_dora else "lora"
    config = RunConfig(name=name, train=str(corpus["train"]), model=str(tiny_model), max_steps=8, eval_interval=8,
                       max_epochs=0, lr=0.02, warmup_steps=1, batch_size=4, use_dora=use_dora)
    run_experiment(RunFolder(ws.run_dir(name)), config, progress=False)
    adapter = ws.run_dir(name) / "adapters" / "step-8"
    adapter_config = json.loads((adapter / "adapter_config.json").read_text())
    assert adapter_config["use_dora"] is use_dora and adapter_config["r"] == 32
    base, tuned = load_asr(tiny_model), load_asr(tiny_model, adapter=adapter)
    batch = collate(load_examples(corpus["train"], False)[:2], base.tokenizer, 1, {})
    batch.pop("labels")
    with torch.no_grad():
        changed = (tuned.model(**batch).logits - base.model(**batch).logits).abs().max()
    assert changed > 1e-3  # the merged adapter really changes the model
    texts = transcribe(tuned, [load_audio(Path(corpus["train"]).parent / "c0.wav")])
    assert len(texts) == 1 and isinstance(texts[0], str)


def test_resume_after_kill_continues_steps_and_loss_curve(ws, tiny_model, corpus):
    from vocabd.training.launch import prepare_new_run, spawn_trainer
    from vocabd.training.options import build_run_config

    args = ["--model", str(tiny_model), *FAST]
    config = build_run_config(ws, "killed", corpus["train"], {"model": str(tiny_model), "batch_size": 4, "lr": 0.01,
                                                              "warmup_steps": 2, "eval_interval": 10, "max_steps": 30,
                                                              "max_epochs": 0})
    run = ws.run_dir("killed")
    prepare_new_run(RunFolder(run), config)
    pid = spawn_trainer(RunFolder(run))
    deadline = time.time() + 90
    while time.time() < deadline and not (run / "adapters" / "step-10").is_dir():
        time.sleep(0.1)
    assert (run / "adapters" / "step-10").is_dir(), (run / "stdout.log").read_text()[-2000:]
    while time.time() < deadline and len(train_events(run)) < 13:
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    killed_at = max(e["step"] for e in train_events(run))
    assert read_status(run).state == "failed"
    assert cli("poll", "killed", "-w", str(ws.root))[0] == 1

    code, out = cli("run-experiment", "killed", "-w", str(ws.root), "--resume")
    assert code == 0, out
    steps = train_events(run)
    assert [e["step"] for e in steps] == list(range(1, 31)) and killed_at < 30
    assert [e["step"] for e in train_events(run, "eval")] == [0, 10, 20, 30]

    # the same settings without a kill give the same loss curve: the resume restored weights, optimizer,
    # schedule, RNG and the batch order
    code, out = cli("run-experiment", "straight", "-w", str(ws.root), "--train", str(corpus["train"]),
                    "--max-steps", "30", *args)
    assert code == 0, out
    straight = [e["loss"] for e in train_events(ws.run_dir("straight"))]
    assert [e["loss"] for e in steps] == pytest.approx(straight, rel=1e-3)


def test_second_run_with_the_same_name_is_refused_while_alive(ws, tiny_model, corpus):
    run = ws.run_dir("busy")
    lock = acquire_run_lock(run)  # stands in for a live training process
    try:
        code, out = cli("run-experiment", "busy", "-w", str(ws.root), "--train", str(corpus["train"]),
                        "--model", str(tiny_model))
        assert code == 1 and "already running" in out
    finally:
        lock.close()


def test_poll_reports_stalled_and_failed(ws):
    run = ws.run_dir("quiet")
    lock = acquire_run_lock(run)
    try:
        write_status(run, RunStatus(state="running", step=5, max_steps=50, pid=os.getpid(),
                                    heartbeat=time.time() - 3600))
        assert read_status(run, stall_seconds=600).state == "stalled"
        code, out = cli("poll", "quiet", "-w", str(ws.root))
        assert code == 3 and "STALLED" in out
    finally:
        lock.close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_status(run, RunStatus(state="running", step=5, max_steps=50, pid=dead.pid, heartbeat=time.time()))
    assert read_status(run).state == "failed"


def test_bad_audio_fails_the_run_with_a_clear_report(ws, tiny_model, corpus, tmp_path):
    bad = tmp_path / "bad.jsonl"
    rows = corpus["train"].read_text().splitlines()
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    rows.append(json.dumps({"audio": "broken.wav", "text": "broken"}))
    bad.write_text("\n".join(r.replace('"c', f'"{corpus["train"].parent}/c') for r in rows) + "\n")
    ws.config_file.write_text("[data]\nallow_outside = true\n")  # the good rows lie outside bad.jsonl's folder
    code, out = cli("run-experiment", "bad", "-w", str(ws.root), "--train", str(bad), "--model", str(tiny_model))
    assert code == 1 and "broken.wav" in out
    run = ws.run_dir("bad")
    assert read_status(run).state == "failed" and "broken.wav" in read_status(run).error
    failed = (run / "FAILED.md").read_text()
    assert "broken.wav" in failed  # the one FAILED.md format (vocabd/failure.py), as a chain stage writes it
    assert all(part in failed for part in ("- when: ", "## Error", "## What to do", "## Log tail", "## Traceback"))


def test_long_clips_get_smaller_batches():
    import numpy as np

    from vocabd.training.data import MAX_BATCH_SECONDS, Example, cut_batches

    def clip(seconds: float) -> Example:
        return Example(pcm=np.zeros(int(seconds * 16000), dtype=np.int16), text="x", id=str(seconds),
                       source="real")

    ordered = [clip(1.0)] * 10 + [clip(29.0)] * 10
    batches = cut_batches(ordered, 8)
    assert sum(len(b) for b in batches) == 20 and all(len(b) <= 8 for b in batches)
    assert all(len(b) * max(e.seconds for e in b) <= MAX_BATCH_SECONDS for b in batches)
    assert len(batches[0]) == 8 and len(batches[-1]) < 8


class _RunsCode:
    """A pickle that would create `marker` when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_refuses_a_crafted_trainer_state(ws, tiny_model, corpus, tmp_path):
    import torch

    code, out = cli("run-experiment", "crafted", "-w", str(ws.root), "--train", str(corpus["train"]), "--model",
                    str(tiny_model), "--max-steps", "2", *FAST[:-2], "--eval-interval", "2")
    assert code == 0, out
    state = ws.run_dir("crafted") / "adapters" / "step-2" / "trainer_state.pt"
    assert set(torch.load(state, weights_only=True)) >= {"step", "optimizer", "torch_rng"}
    marker = tmp_path / "ran"
    torch.save({"step": 2, "optimizer": _RunsCode(marker)}, state)
    code, out = cli("run-experiment", "crafted", "-w", str(ws.root), "--resume", "--max-steps", "4")
    assert code == 1 and "trainer_state.pt" in out and "refused" in out
    assert not marker.exists()


def test_heavy_lock_lets_one_worker_at_a_time_and_names_the_holder(tmp_path):
    from vocabd.training.heavy import HeavyLock

    path = tmp_path / "heavy.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from vocabd.training.heavy import HeavyLock; "
        f"lock = HeavyLock('trainer run-x', {str(path)!r}); lock.acquire(); print('held', flush=True); "
        "sys.stdin.readline()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = HeavyLock("evaluate", path)
        assert not waiter.try_acquire()
        seen: list[str] = []

        def on_wait(who: str) -> None:
            seen.append(who)
            if len(seen) == 2:
                holder.stdin.write("\n")
                holder.stdin.flush()

        waiter.acquire(on_wait, poll_seconds=0.05)
        assert waiter.held and seen[0] == f"{holder.pid} trainer run-x"
        assert path.read_text().strip() == f"{os.getpid()} evaluate"
        waiter.release()
        assert not waiter.held and path.read_text() == ""
    finally:
        holder.kill()
        holder.wait()


def test_heavy_lock_is_freed_when_its_holder_is_killed(tmp_path):
    from vocabd.training.heavy import HeavyLock

    path = tmp_path / "heavy.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from vocabd.training.heavy import HeavyLock; "
        f"lock = HeavyLock('trainer', {str(path)!r}); lock.acquire(); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert not HeavyLock("evaluate", path).try_acquire()
    holder.kill()
    holder.wait()
    lock = HeavyLock("evaluate", path)
    assert lock.try_acquire()
    lock.release()


@pytest.mark.parametrize("cpus, others, threads", [
    (2, 0.0, 2),  # a quiet machine: every core
    (2, 0.1, 2),  # a little background noise
    (2, 1.0, 1),  # someone else keeps one core busy
    (2, 5.0, 1),  # a crowded machine: one thread, never zero
    (8, 3.0, 5),
    (4, 0.4, 4),
])
def test_torch_threads_are_the_cores_others_leave_free(cpus, others, threads):
    from vocabd.training.heavy import free_cores

    assert free_cores(cpus, others) == threads


@pytest.mark.parametrize("cpus, others, busy", [
    (2, 0.0, False),
    (2, 1.4, False),  # 0.6 of a core left: as free_cores counts it, one thread's worth
    (2, 1.6, True),  # less than half a core left
    (2, 5.0, True),
    (1, 0.3, False),
    (1, 1.0, True),
    (8, 7.0, False),
    (8, 7.8, True),
])
def test_busy_means_the_other_processes_leave_no_core_free(cpus, others, busy):
    from vocabd.training.heavy import is_busy

    assert is_busy(cpus, others) is busy


def test_a_busy_pause_is_due_only_when_asked_for_at_a_window_that_left_no_core_free():
    from vocabd.training.heavy import ThreadGovernor, usable_cpus
    from vocabd.training.pause import PauseWatch, busy_pause

    cpus, threads = usable_cpus(), ThreadGovernor()
    config = RunConfig(name="r", train="train.jsonl", pause_on_battery=False, pause_when_busy=True)
    watch = PauseWatch(config, threads)
    assert watch.due(None) is None  # within a window nothing is decided
    assert watch.due(cpus - 0.6) is None
    pause = watch.due(float(cpus))
    assert pause.reason == "busy" and pause.every == threads.recheck_seconds
    assert f"other processes use {cpus:.1f} of {cpus} cores" in pause.note
    assert "pause_when_busy = false" in pause.note
    assert PauseWatch(replace(config, pause_when_busy=False), threads).due(float(cpus)) is None

    readings = iter([cpus + 1.0, cpus - 0.6])  # each window's reading, asked once a window
    pause = busy_pause(cpus, float(cpus), lambda: next(readings), 60.0)
    assert pause.holds() and not pause.holds()


def _power_supply(root: Path, name: str, **files: str) -> None:
    (root / name).mkdir(parents=True)
    for key, value in files.items():
        (root / name / key).write_text(value + "\n")


def test_battery_reader_on_a_sysfs_folder(tmp_path):
    from vocabd.training.power import sysfs_on_battery

    laptop = tmp_path / "laptop"
    _power_supply(laptop, "AC", type="Mains", online="1")
    _power_supply(laptop, "BAT0", type="Battery", status="Charging")
    _power_supply(laptop, "hid-mouse-battery", type="Battery", scope="Device", status="Discharging")
    assert not sysfs_on_battery(laptop)
    (laptop / "AC" / "online").write_text("0\n")
    (laptop / "BAT0" / "status").write_text("Discharging\n")
    assert sysfs_on_battery(laptop)
    (laptop / "BAT0" / "status").write_text("Not charging\n")
    assert sysfs_on_battery(laptop)  # no mains online: on battery whatever the status says
    desktop = tmp_path / "desktop"
    _power_supply(desktop, "hid-mouse-battery", type="Battery", scope="Device", status="Discharging")
    assert not sysfs_on_battery(desktop) and not sysfs_on_battery(tmp_path / "none")


def test_training_pauses_checkpointed_and_resumes_where_it_stopped(ws, tiny_model, corpus, tmp_path, monkeypatch):
    """The pause both reasons share, driven by the battery (the busy one differs only in its `holds`)."""
    from vocabd.training.heavy import HeavyLock
    from vocabd.training.launch import prepare_new_run, spawn_trainer
    from vocabd.training.options import build_run_config

    power = tmp_path / "power_supply"
    power.mkdir()
    monkeypatch.setenv("VOCABD_POWER_SUPPLY", str(power))
    monkeypatch.setenv("VOCABD_POWER_CHECK_S", "0.2")
    config = build_run_config(ws, "paused", corpus["train"], {"model": str(tiny_model), "batch_size": 4, "lr": 0.01,
                                                              "warmup_steps": 2, "eval_interval": 10, "max_steps": 40,
                                                              "max_epochs": 0})
    run, folder = ws.run_dir("paused"), RunFolder(ws.run_dir("paused"))
    prepare_new_run(folder, config)
    spawn_trainer(folder)
    deadline = time.time() + 120
    while time.time() < deadline and len(train_events(run)) < 3:
        time.sleep(0.05)
    _power_supply(power, "BAT0", type="Battery", status="Discharging")
    while time.time() < deadline and not read_status(run).reason.startswith("paused"):
        time.sleep(0.05)
    status = read_status(run)
    assert status.reason.startswith("paused: on battery"), (run / "stdout.log").read_text()[-2000:]
    [paused] = train_events(run, "paused")
    step = paused["step"]
    assert paused["reason"] == "on battery" and 3 <= step < 40 and folder.latest_checkpoint() == step
    lock = HeavyLock("test")
    assert lock.try_acquire()  # the machine is let go while paused
    lock.release()
    time.sleep(1.0)
    later = read_status(run)
    assert later.state == "running" and later.heartbeat > status.heartbeat  # alive, not stalled
    assert later.step == step and max(e["step"] for e in train_events(run)) == step
    code, out = cli("poll", "paused", "-w", str(ws.root))
    assert code == 2 and "note: paused: on battery" in out

    shutil.rmtree(power / "BAT0")  # mains again
    while time.time() < deadline and read_status(run).state == "running":
        time.sleep(0.1)
    assert read_status(run).state == "finished", (run / "stdout.log").read_text()[-2000:]
    [resumed] = train_events(run, "resumed")
    assert (resumed["step"], resumed["reason"]) == (step, "on battery") and resumed["paused_seconds"] >= 1.0
    assert [e["step"] for e in train_events(run)] == list(range(1, 41))
    assert read_status(run).reason == ""


def test_battery_reader_on_pmset_output():
    from vocabd.training.power import pmset_on_battery

    assert pmset_on_battery("Now drawing from 'Battery Power'\n -InternalBattery-0 (id=1)\t87%; discharging;")
    assert not pmset_on_battery("Now drawing from 'AC Power'\n -InternalBattery-0 (id=1)\t87%; charging;")
    assert not pmset_on_battery("")


def test_micro_batches_give_the_gradients_of_one_pass(tiny_model, corpus):
    from vocabd.asr.labels import DECODER_START_ID
    from vocabd.asr.model import load_asr
    from vocabd.training.adapter import attach_adapter
    from vocabd.training.data import load_examples, micro_batches
    from vocabd.training.loop import backward_in_parts

    examples = load_examples(corpus["train"], allow_outside=False)[:6]
    parts = micro_batches(examples, max_seconds=3.0)
    assert len(parts) > 1 and sorted(e.id for p in parts for e in p) == sorted(e.id for e in examples)
    assert all(len(p) == 1 or len(p) * max(e.seconds for e in p) <= 3.0 for p in parts)
    # clips of one length: padding (which the encoder's group norm sees) is the same either way
    shortest = min(e.samples for e in examples)
    examples = [replace(e, pcm=e.pcm[:shortest]) for e in examples]
    config = RunConfig(name="g", train="", model=str(tiny_model), lora_dropout=0.0)
    model = attach_adapter(load_asr(tiny_model).model, config)
    tokenizer = load_asr(tiny_model).tokenizer

    def grads(max_seconds: float) -> tuple[float, dict]:
        model.zero_grad(set_to_none=True)
        loss, _ = backward_in_parts(model, examples, tokenizer, DECODER_START_ID, {}, max_seconds)
        return loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    whole_loss, whole = grads(1000.0)
    parts_loss, parted = grads(2 * shortest / 16000)
    assert parts_loss == pytest.approx(whole_loss, rel=1e-5)
    assert all(float((whole[n] - parted[n]).abs().max()) <= 1e-5 + 1e-4 * float(whole[n].abs().max())
               for n in whole)


def test_dora_cache_during_evaluation_never_serves_old_weights(tiny_model, corpus):
    import torch

    from vocabd.asr.labels import DECODER_START_ID
    from vocabd.asr.model import load_asr
    from vocabd.training.adapter import attach_adapter
    from vocabd.training.data import collate, load_examples
    from vocabd.training.loop import evaluation_mode, train_step

    asr = load_asr(tiny_model)
    model = attach_adapter(asr.model, RunConfig(name="c", train="", model=str(tiny_model), use_dora=True))
    examples = load_examples(corpus["train"], False)[:4]
    batch = collate(examples[:3], asr.tokenizer, DECODER_START_ID, {})
    batch.pop("labels")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    rounds = []
    for _ in range(2):
        model.train()
        train_step(model, optimizer, scheduler, examples, asr.tokenizer, DECODER_START_ID, {})
        with torch.no_grad(), evaluation_mode(model):
            cached = model(**batch).logits
            assert torch.equal(model(**batch).logits, cached)
        assert model.training  # back in training mode, cache dropped
        model.eval()
        with torch.no_grad():
            fresh = model(**batch).logits  # no cache: computed from the current weights
        assert torch.allclose(cached, fresh, atol=1e-5)
        rounds.append(fresh)
    assert not torch.allclose(rounds[0], rounds[1], atol=1e-4)  # the weights moved between the evaluations


def test_a_clip_longer_than_the_micro_batch_cap_is_recomputed_with_the_same_gradients(tiny_model, corpus):
    from vocabd.asr.labels import DECODER_START_ID
    from vocabd.asr.model import load_asr
    from vocabd.training.adapter import attach_adapter
    from vocabd.training.data import load_examples
    from vocabd.training.loop import backward_in_parts

    asr = load_asr(tiny_model)
    model = attach_adapter(asr.model, RunConfig(name="r", train="", model=str(tiny_model), use_dora=True))
    model.train()
    clip = load_examples(corpus["train"], allow_outside=False)[:1]
    # the first projection inside the checkpointed layer (the recompute stops once it has what backward needs)
    q_proj = model.get_base_model().model.encoder.layers[0].self_attn.q_proj
    calls = []
    q_proj.register_forward_hook(lambda *args: calls.append(1))

    def grads(max_seconds: float) -> tuple[int, dict]:
        calls.clear()
        model.zero_grad(set_to_none=True)
        backward_in_parts(model, clip, asr.tokenizer, DECODER_START_ID, {}, max_seconds)
        return len(calls), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    once, plain = grads(1000.0)
    twice, recomputed = grads(clip[0].seconds / 2)
    assert (once, twice) == (1, 2)  # the long clip's layer ran again in backward
    assert all(float((plain[n] - recomputed[n]).abs().max()) <= 1e-6 + 1e-5 * float(plain[n].abs().max())
               for n in plain)
    assert not model.get_base_model().is_gradient_checkpointing


@pytest.mark.parametrize("bias", [True, False])
def test_fused_dora_gives_peft_dora_outputs_and_gradients(bias):
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora.variants import DoraLinearVariant

    from vocabd.training.dora import FusedDoraLinearVariant, use_fused_dora

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(12, 20, bias=bias), torch.nn.Tanh(), torch.nn.Linear(20, 7, bias=bias))
        model = get_peft_model(net, LoraConfig(r=4, lora_alpha=8, use_dora=True, target_modules=["0", "2"]))
        for name, p in model.named_parameters():
            if "lora_B" in name or "magnitude" in name:
                with torch.no_grad():
                    p.add_(torch.randn_like(p) * 0.3)  # an adapter that has moved: B = 0 would hide mistakes
        return model

    x = torch.randn(3, 5, 12)
    peft_model, fused = build(), build()
    assert use_fused_dora(fused) == 2
    assert all(type(v) is DoraLinearVariant for m in peft_model.modules() for v in getattr(m, "lora_variant", {}).values())
    results = []
    for model in (peft_model, fused):
        model.train()
        out = model(x)
        out.square().sum().backward()
        results.append((out, {n: p.grad for n, p in model.named_parameters() if p.requires_grad}))
    (want, want_grads), (got, got_grads) = results
    assert torch.allclose(got, want, atol=1e-5)
    assert want_grads.keys() == got_grads.keys() and len(want_grads) == 6
    assert all(torch.allclose(got_grads[n], want_grads[n], atol=1e-4) for n in want_grads)

    # the cached norm follows the weights: after an optimizer step both still agree
    for model in (peft_model, fused):
        torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
    with torch.no_grad():
        assert torch.allclose(fused(x), peft_model(x), atol=1e-5)
    assert any(isinstance(v, FusedDoraLinearVariant) for m in fused.modules() for v in getattr(m, "lora_variant", {}).values())


def test_training_audio_is_held_once_per_file_as_16_bit(corpus, tmp_path):
    import numpy as np

    from vocabd.audio import load_audio
    from vocabd.training.data import load_examples

    row = json.loads(corpus["train"].read_text().splitlines()[0])
    row["audio"] = str(corpus["train"].parent / row["audio"])
    manifest = tmp_path / "oversampled.jsonl"
    manifest.write_text("\n".join(json.dumps(dict(row, id=f"copy{i}")) for i in range(3)) + "\n")
    copies = load_examples(manifest, allow_outside=True)
    assert len(copies) == 3 and copies[0].pcm is copies[1].pcm is copies[2].pcm
    assert copies[0].pcm.dtype == np.int16
    original = load_audio(Path(row["audio"]))
    assert np.abs(copies[0].audio - original).max() <= 1 / 32768


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc/self/statm")
def test_heap_trimmer_trims_only_after_the_process_grew_past_its_limit():
    from vocabd.training.memory import HeapTrimmer, resident_bytes

    assert resident_bytes() > 0
    trimmer = HeapTrimmer(limit=2**40)
    assert trimmer.after_step(resident_bytes()) and trimmer.floor is not None  # the first step sets the floor
    assert not trimmer.after_step(resident_bytes())  # has not grown by a terabyte
    trimmer.limit = -1
    assert trimmer.after_step(resident_bytes())


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="Linux's /proc/stat")
def test_others_load_sees_a_busy_process_at_once():
    from vocabd.training.heavy import others_load

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert others_load(1.0) >= 0.5  # the 1-minute load average would still be near 0 here
    finally:
        spinner.kill()
        spinner.wait()


def test_others_load_falls_back_to_the_load_average(monkeypatch, tmp_path):
    from vocabd.training import heavy

    monkeypatch.setattr(heavy, "PROC_STAT", tmp_path / "no-proc-stat")
    monkeypatch.setattr(heavy.os, "getloadavg", lambda: (3.0, 2.0, 1.0))
    assert heavy.others_load(0.1) == pytest.approx(3.0, abs=0.2)



def test_the_upper_adapter_leaves_the_lower_encoder_out_of_backward():
    import torch
    from transformers import MoonshineConfig, MoonshineForConditionalGeneration

    from vocabd.training.adapter import attach_adapter

    net = MoonshineForConditionalGeneration(MoonshineConfig(
        vocab_size=40, hidden_size=16, intermediate_size=32, encoder_num_hidden_layers=4, decoder_num_hidden_layers=2,
        encoder_num_attention_heads=2, decoder_num_attention_heads=2, max_position_embeddings=64))
    model = attach_adapter(net, RunConfig(name="t", train="", lora_r=2, lora_alpha=4, targets="upper"))
    adapted = {n.split(".lora_A")[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    layers = {(n.split(".layers.")[0].rsplit(".", 1)[-1], int(n.split(".layers.")[1].split(".")[0])) for n in adapted}
    assert layers == {("encoder", 2), ("encoder", 3), ("decoder", 0), ("decoder", 1)}
    assert len(adapted) == 2 * 6 + 2 * 10  # every projection of those layers: attention, cross-attention, MLP

    reached = set()
    for i, layer in enumerate(net.model.encoder.layers):
        layer.register_forward_hook(lambda m, args, out, i=i: reached.add(i) if out[0].requires_grad else None)
    audio = torch.randn(1, 4000)
    model(input_values=audio, decoder_input_ids=torch.tensor([[1, 5, 6]])).logits.sum().backward()
    assert reached == {2, 3}  # below the adapted layers nothing needs a gradient: autograd keeps no activations


def test_a_run_ends_after_max_epochs_passes_over_its_data(tmp_path):
    from vocabd.training.data import MIN_EPOCH_CAPPED_STEPS, Example, TrainData, epoch_batches, run_steps

    pcm = [np.zeros(16000 * seconds, dtype=np.int16) for seconds in range(1, 6)]  # shared: memory stays small

    def clips(n: int, source: str) -> list[Example]:
        return [Example(pcm=pcm[i % 5], text=f"t{i}", id=f"{source}{i}", source=source) for i in range(n)]

    data = TrainData(train=clips(1400, "real"), dev=[], replay=clips(700, "replay"), replay_dev=[])
    config = RunConfig(name="e", train="", batch_size=8, replay_ratio=0.3, max_steps=1000, max_epochs=2.0)
    per_epoch = len(epoch_batches(data, 8, 0.3, 0, 0))
    assert per_epoch == 250  # 1400 clips + 600 replayed, in batches of 8
    assert run_steps(data, config) == 500
    assert run_steps(data, replace(config, max_epochs=0.5)) == MIN_EPOCH_CAPPED_STEPS == 300  # not cut below
    assert run_steps(data, replace(config, max_steps=200)) == 200  # max_steps still bounds it
    assert run_steps(data, replace(config, max_epochs=0)) == 1000  # 0: no limit
