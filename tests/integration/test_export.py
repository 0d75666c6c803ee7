"""`vocabd export`: hf and onnx round trips with the tiny model, and the moonshine-cpp weight patch on the wheel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny import speech_wav


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model, tmp_path_factory) -> Path:
    """A LoRA adapter with random (non-zero) weights: merging it really changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import MoonshineForConditionalGeneration

    torch.manual_seed(1)
    net = MoonshineForConditionalGeneration.from_pretrained(tiny_model)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "fc1", "fc2"], init_lora_weights=False)
    folder = tmp_path_factory.mktemp("adapter")
    get_peft_model(net, config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[np.ndarray]:
    from vocabd.audio import load_audio

    folder = tmp_path_factory.mktemp("speech")
    texts = ["export the model", "hello there, how are you today"]
    return [load_audio(speech_wav(folder / f"{i}.wav", t)) for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def pytorch_texts(tiny_model, tiny_adapter, clips) -> list[str]:
    from vocabd.asr.model import load_asr
    from vocabd.asr.transcribe import transcribe

    return transcribe(load_asr(tiny_model, tiny_adapter), clips, batch_size=1)


def test_hf_export_loads_in_plain_transformers_and_says_the_same(tiny_model, tiny_adapter, clips, pytorch_texts,
                                                                 tmp_path):
    from safetensors.numpy import load_file

    from vocabd.asr.model import load_asr
    from vocabd.asr.transcribe import transcribe
    from vocabd.export.run import export_model

    out = tmp_path / "hf"
    note = export_model(out, "hf", str(tiny_model), tiny_adapter)
    assert note["adapter"] == str(tiny_adapter) and json.loads((out / "vocabd-export.json").read_text())["format"] == "hf"
    merged, base = load_file(out / "model.safetensors"), load_file(tiny_model / "model.safetensors")
    changed = [k for k in base if k in merged and not np.array_equal(base[k], merged[k])]
    assert any("q_proj" in k for k in changed) and not any("lora" in k for k in merged)
    assert transcribe(load_asr(out), clips, batch_size=1) == pytorch_texts


def test_onnx_export_greedy_decoding_matches_pytorch(tiny_model, tiny_adapter, clips, pytorch_texts, tmp_path):
    from vocabd.export.greedy import OnnxTranscriber
    from vocabd.export.run import export_model

    out = tmp_path / "onnx"
    export_model(out, "onnx", str(tiny_model), tiny_adapter)
    assert sorted(p.name for p in out.glob("*.onnx")) == ["decoder_model.onnx", "encoder_model.onnx"]
    assert not list(out.glob("*.data"))  # weights inside the graphs: two self-contained files
    texts, seconds = OnnxTranscriber(out).transcribe_all(clips)
    assert texts == pytorch_texts and seconds > 0


def test_moonshine_cpp_format_needs_the_offline_base(tiny_model, tiny_adapter, tmp_path):
    from vocabd.errors import VocabdError
    from vocabd.export.run import export_model

    with pytest.raises(VocabdError, match="offline base model"):
        export_model(tmp_path / "cpp", "moonshine-cpp", str(tiny_model), tiny_adapter)
    assert not (tmp_path / "cpp").exists() and not list(tmp_path.iterdir())


def test_export_never_overwrites(tiny_model, tmp_path):
    from vocabd.errors import VocabdError
    from vocabd.export.run import export_model

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(VocabdError, match="not empty"):
        export_model(tmp_path / "out", "hf", str(tiny_model), None)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_cli_export_uses_the_promoted_adapter(tiny_model, tiny_adapter, tmp_path):
    import shutil

    from click.testing import CliRunner

    from tiny import tiny_workspace_config
    from vocabd.cli import main

    ws = tmp_path / "ws"
    assert CliRunner().invoke(main, ["init", str(ws)]).exit_code == 0
    (ws / "vocabd.toml").write_text(tiny_workspace_config(tiny_model))
    refused = CliRunner().invoke(main, ["export", str(tmp_path / "none"), "-w", str(ws)])
    assert refused.exit_code == 1 and "no promoted adapter" in refused.output
    shutil.copytree(tiny_adapter, ws / "runs" / "me-1" / "best")
    (ws / "data" / "active.json").write_text(json.dumps({"adapter": "runs/me-1/best", "model": str(tiny_model)}))
    done = CliRunner().invoke(main, ["export", str(tmp_path / "hf"), "-w", str(ws)])
    assert done.exit_code == 0, done.output
    note = json.loads((tmp_path / "hf" / "vocabd-export.json").read_text())
    assert note["adapter"] == str((ws / "runs" / "me-1" / "best").resolve())


def test_active_adapter_outside_the_workspace_is_refused(tiny_model, tiny_adapter, tmp_path):
    from vocabd.asr.active import active_model
    from vocabd.errors import VocabdError
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    (ws.data / "active.json").write_text(json.dumps({"adapter": str(tiny_adapter)}))
    with pytest.raises(VocabdError, match="leaves the workspace"):
        active_model(ws)


def test_patching_the_wheel_rewrites_only_changed_weights_and_the_runtime_loads_it(tmp_path):
    """The real moonshine-cpp encoder: one projection changed, requantized in place; the runtime still runs."""
    import shutil

    from vocabd.asr.convert import ENCODER_PREFIX, map_weights
    from vocabd.asr.offline import wheel_files
    from vocabd.asr.ort import read_ort
    from vocabd.export.moonshine_cpp import DECODER, ENCODER, TOKENIZER, patch_ort, runtime_transcribe

    files = wheel_files()
    base = map_weights(read_ort(files.encoder), ENCODER_PREFIX)
    name = "model.encoder.layers.0.self_attn.q_proj.weight"
    rng = np.random.default_rng(0)
    changed = dict(base)
    changed[name] = base[name] + rng.normal(0, 0.02, base[name].shape).astype(np.float32)
    changed["model.encoder.layers.1.mlp.fc1.weight"] = base["model.encoder.layers.1.mlp.fc1.weight"] * 3
    result = patch_ort(files.encoder, tmp_path / ENCODER, changed, ENCODER_PREFIX)
    assert result.tensors == 2 and result.widened >= 1  # tripled weights no longer fit the old range
    assert (tmp_path / ENCODER).stat().st_size == files.encoder.stat().st_size
    patched = map_weights(read_ort(tmp_path / ENCODER), ENCODER_PREFIX)
    for key, value in base.items():
        if key in (name, "model.encoder.layers.1.mlp.fc1.weight"):
            step = max(np.ptp(changed[key]), np.ptp(value)) / 255  # the new range, or the old one kept
            assert np.abs(patched[key] - changed[key]).max() <= step / 2 + 1e-6
            assert not np.array_equal(patched[key], value)
        else:
            assert np.array_equal(patched[key], value), key
    assert patch_ort(files.encoder, tmp_path / "same.ort", base, ENCODER_PREFIX).tensors == 0
    assert (tmp_path / "same.ort").read_bytes() == files.encoder.read_bytes()
    slightly = dict(base)
    slightly[name] = base[name] + rng.normal(0, 0.002, base[name].shape).astype(np.float32)
    assert patch_ort(files.encoder, tmp_path / ENCODER, slightly, ENCODER_PREFIX).tensors == 1
    shutil.copyfile(files.decoder, tmp_path / DECODER)
    shutil.copyfile(files.tokenizer, tmp_path / TOKENIZER)
    [text] = runtime_transcribe(tmp_path, [files.test_wav])
    assert "try again" in text.lower()
