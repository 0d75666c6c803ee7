import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tiny import speech_wav, tone
from vocabd.asr.labels import DECODER_START_ID, encode_labels
from vocabd.asr.model import load_asr, resolve_model
from vocabd.asr.transcribe import drop_loop, max_new_tokens, pad_batch, transcribe
from vocabd.audio import load_audio
from vocabd.errors import VocabdError


def test_generation_cap_scales_with_audio():
    assert max_new_tokens(0.2) == 8
    assert max_new_tokens(10.0) == 65


def test_a_runaway_loop_keeps_its_phrase_once():
    eos = 2
    assert drop_loop([1, 5, 6, 7, 8, 9, 7, 8, 9, 7, 8, 9, 7, 8], eos) == [1, 5, 6, 7, 8, 9]
    assert drop_loop([1, 5, 5, 5, 5, 5, 5], eos) == [1, 5]
    assert drop_loop([1, 4, 5, 6, 4, 5, 6, 4, 5], eos) == [1, 4, 5, 6]  # twice and cut off
    assert drop_loop([1, 5, 6, 5, 6], eos) == [1, 5, 6, 5, 6]  # too short to call a loop
    ended = [1, 7, 8, 7, 8, 7, 8, 7, 8, eos]
    assert drop_loop(ended, eos) == ended  # a text that ended by itself is the model's answer


def test_pad_batch_masks_padding():
    values, mask = pad_batch([np.ones(3, np.float32), np.ones(5, np.float32)])
    assert values.shape == mask.shape == (2, 5)
    assert mask[0].tolist() == [1, 1, 1, 0, 0] and values[0, 3:].sum() == 0


def test_labels_end_with_eos_and_have_no_bos(tiny_model):
    asr = load_asr(tiny_model)
    ids = encode_labels(asr.tokenizer, "WER @ kubectl")
    assert ids[-1] == asr.tokenizer.eos_token_id and DECODER_START_ID not in ids
    assert asr.tokenizer.decode(ids, skip_special_tokens=True) == "WER @ kubectl"


def test_unknown_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(VocabdError, match="not found"):
        resolve_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VocabdError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


def train_tiny_adapter(model_path, audio, text, dest):
    """Teach a LoRA adapter on the tiny model to say `text` for `audio` (a real, if small, training run)."""
    import torch
    from peft import LoraConfig, get_peft_model

    asr = load_asr(model_path)
    torch.manual_seed(0)
    net = get_peft_model(asr.model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    labels = torch.tensor([encode_labels(asr.tokenizer, text)])
    decoder_in = torch.cat([torch.tensor([[DECODER_START_ID]]), labels[:, :-1]], dim=1)
    values = torch.from_numpy(audio)[None]
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=3e-2)
    net.train()
    for _ in range(100):
        logits = net(input_values=values, decoder_input_ids=decoder_in).logits
        loss = torch.nn.functional.cross_entropy(logits[0], labels[0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.save_pretrained(dest)
    return dest


def test_transcribe_with_and_without_adapter(tiny_model, tmp_path):
    audio = load_audio(speech_wav(tmp_path / "hi.wav", "hello there"))
    adapter = train_tiny_adapter(tiny_model, audio, "ok PBX", tmp_path / "adapter")
    base = transcribe(load_asr(tiny_model), [audio, tone(0.5)])
    adapted = transcribe(load_asr(tiny_model, adapter=adapter), [audio, tone(0.5)], batch_size=1)
    assert base[0] != "ok PBX"
    assert adapted[0] == "ok PBX"


def test_adapter_folder_is_checked(tiny_model, tmp_path):
    with pytest.raises(VocabdError, match="adapter_config.json"):
        load_asr(tiny_model, adapter=tmp_path)


def test_evaluate_command_json(tiny_model, tmp_path):
    speech_wav(tmp_path / "a.wav", "press the pound key")
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"audio": "a.wav", "text": "Press the pound key."}) + "\n"
        + json.dumps({"audio": "missing.wav", "text": "gone"}) + "\n")
    (tmp_path / "jargon.txt").write_text("pound key\nPBX | P B X\n")
    out = subprocess.run(
        [sys.executable, "-m", "vocabd", "evaluate", str(tmp_path / "m.jsonl"), "--model", str(tiny_model),
         "--jargon", str(tmp_path / "jargon.txt"), "--json"],
        capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["clips"] == 1 and 0.0 <= result["wer_normalized"]
    assert set(result["terms"]) == {"pound key", "PBX"} and result["terms"]["pound key"]["expected"] == 1
    assert "missing.wav" in result["skipped"][0] and ":2:" in result["skipped"][0]
    assert result["utterances"][0]["ref"] == "Press the pound key." and result["rtf"] > 0


def test_transcribe_uses_the_workspace_active_adapter(tiny_model, tmp_path):
    from vocabd.asr.active import write_active
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    ws.config_file.write_text(f'[model]\nbase = "{tiny_model}"\n')
    wav = speech_wav(tmp_path / "hi.wav", "hello there")
    adapter = train_tiny_adapter(tiny_model, load_audio(wav), "ok PBX", ws.runs / "me" / "best")
    write_active(ws, {"adapter": str(adapter.relative_to(ws.root)), "adapter_path": str(adapter)})

    def run(*extra):
        cmd = [sys.executable, "-m", "vocabd", "transcribe", str(wav), "-w", str(ws.root), *extra]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    assert run() == "ok PBX"
    assert run("--base") != "ok PBX"


def test_unreachable_hub_falls_back_without_a_download_attempt(monkeypatch):
    """A dead network is found out by a quick connect, not by huggingface_hub's ~25 s of retries."""
    import vocabd.asr.model as model_module
    import vocabd.asr.offline as offline

    tried = []
    monkeypatch.setattr(model_module, "hub_reachable", lambda: False)
    monkeypatch.setattr("huggingface_hub.snapshot_download",
                        lambda repo, local_files_only=False: tried.append(local_files_only) or _raise())
    monkeypatch.setattr(offline, "build_offline_model", lambda: Path("/offline-build"))
    assert model_module.resolve_model("someone/not-cached-model") == Path("/offline-build")
    assert tried == [True]  # the cache was looked at; no download was attempted


def _raise():
    raise OSError("not in the cache")
