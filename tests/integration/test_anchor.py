"""The label-free regularizer: KL to the frozen base model (adapter disabled) on general audio."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tiny import speech_wav
from vocabd.cli import main
from vocabd.training.run_folder import RunFolder
from vocabd.workspace import init_workspace

TEXTS = ["Good morning to you.", "The train leaves at noon.", "Please close the door.", "It is warm today.",
         "We walked to the park.", "See you tomorrow."]


@pytest.fixture(scope="module")
def general(tmp_path_factory):
    root = tmp_path_factory.mktemp("general")
    rows = []
    for i, text in enumerate(TEXTS):
        speech_wav(root / f"g{i}.wav", text, voice="en-gb" if i % 2 else "en-us")
        rows.append(json.dumps({"audio": f"g{i}.wav", "text": text, "id": f"g{i}"}))
    (root / "general.jsonl").write_text("\n".join(rows) + "\n")
    return root / "general.jsonl"


def test_kl_is_zero_for_an_untrained_adapter_and_pulls_a_moved_one_back(tiny_model, general):
    import torch

    from vocabd.asr.labels import DECODER_START_ID
    from vocabd.asr.model import load_asr
    from vocabd.training.adapter import attach_adapter
    from vocabd.training.anchor import build_anchor
    from vocabd.training.config import RunConfig
    from vocabd.training.data import load_examples

    asr = load_asr(tiny_model)
    model = attach_adapter(asr.model, RunConfig(name="t", train="", model=str(tiny_model), lora_r=4, lora_alpha=8,
                                                lora_dropout=0.0))
    anchor = build_anchor(asr, model, load_examples(general, allow_outside=True), weight=1.0, seed=0)
    assert anchor is not None and len(anchor.examples) >= 2
    assert all(e.source == "anchor" for e in anchor.examples)  # texts are the base model's own transcripts
    labels: dict = {}
    assert float(anchor.loss(model, 0, asr.tokenizer, DECODER_START_ID, labels).detach()) == pytest.approx(0.0, abs=1e-5)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    kl = anchor.loss(model, 0, asr.tokenizer, DECODER_START_ID, labels)
    assert float(kl.detach()) > 1e-3
    kl.backward()
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad and "lora" in n]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)


def test_a_run_with_kl_weight_logs_the_kl_and_saves_the_setting(tmp_path, tiny_model, general):
    ws = init_workspace(tmp_path / "ws")
    result = CliRunner().invoke(main, [
        "run-experiment", "kl", "--workspace", str(ws.root), "--train", str(general), "--model", str(tiny_model),
        "--replay", str(general), "--replay-ratio", "0.3", "--kl-weight", "0.5", "--max-steps", "3",
        "--eval-interval", "3", "--batch-size", "2", "--warmup-steps", "1", "--lora-r", "4"],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    folder = RunFolder(ws.run_dir("kl"))
    assert json.loads(folder.config_file.read_text())["kl_weight"] == 0.5
    steps = [e for e in folder.read_log() if e["event"] == "train"]
    assert len(steps) == 3 and all("kl" in e and e["kl"] >= 0 for e in steps)
