"""The offline base model: moonshine-cpp's .ort weights and tokenizer.bin → a transformers Moonshine folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vocabd.asr import offline
from vocabd.asr.convert import ConversionError, check_complete, map_weights, moonshine_config
from vocabd.asr.offline import (EXPECTED_TRANSCRIPT, OfflineModelError, build_offline_model, is_complete,
                                normalize_transcript, verify_offline_model, wheel_files)
from vocabd.asr.ort import OrtFormatError, OrtGraph, OrtNode, constant_inputs, dequantize, read_ort
from vocabd.asr.tokenizer import TokenizerFileError, build_fast_tokenizer, read_tokenizer_bin

# Ids from SentencePiece 0.2.3 itself, run on a BPE ModelProto built from the same tokenizer.bin (pieces in id
# order, score -rank, byte fallback, dummy prefix, whitespace kept): an independent reference implementation.
SENTENCEPIECE_IDS = {
    "Hello world": [15043, 3186],
    "ops@acme.io costs $3.50, naïve café 日本 🙂": [
        288, 567, 29992, 562, 1004, 29889, 601, 21544, 395, 29941, 29889, 29945, 29900, 29892, 1055, 30085, 345, 274,
        28059, 29871, 30325, 30346, 29871, 243, 162, 156, 133],
    "  two  spaces": [259, 1023, 259, 22854],
    "kubectl PBX IAX2": [413, 431, 522, 29880, 349, 29933, 29990, 306, 6604, 29906],
    "Please press the pound key, then dial 1-800-555-0199.": [
        3529, 3965, 278, 282, 618, 1820, 29892, 769, 270, 616, 29871, 29896, 29899, 29947, 29900, 29900, 29899, 29945,
        29945, 29945, 29899, 29900, 29896, 29929, 29929, 29889],
    "Ünïcödé ĳ ß ﬁ Ωmega": [7189, 29876, 30085, 29883, 9289, 29948, 29871, 199, 182, 29871, 30034, 29871, 31017, 29871,
                            30357, 29885, 2442],
    "a\tb\nc": [263, 12, 29890, 13, 29883],
    "supercalifragilisticexpialidocious antidisestablishmentarianism": [
        2428, 1052, 361, 1431, 309, 391, 625, 26330, 616, 1941, 8802, 3677, 333, 275, 342, 370, 1674, 358, 13956, 1608],
    "Asterisk's voicemail: dial *97 or #": [319, 2475, 3873, 29915, 29879, 992, 293, 5269, 29901, 270, 616, 334,
                                           29929, 29955, 470, 396],
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    """The real conversion of the installed wheel, verified on its test recording (and its own runtime)."""
    return build_offline_model(tmp_path_factory.mktemp("offline") / "moonshine-base", verify=True)


@pytest.fixture(scope="module")
def tokenizer():
    return build_fast_tokenizer(wheel_files().tokenizer)


# --- the real conversion ---------------------------------------------------------------------------------------

def test_conversion_is_complete_and_verified(converted: Path):
    assert is_complete(converted)
    note = json.loads((converted / "vocabd-source.json").read_text())
    assert note["source"] == "moonshine-cpp" and note["version"] == wheel_files().version
    assert normalize_transcript(note["verified_transcript"]) == normalize_transcript(EXPECTED_TRANSCRIPT)
    assert not list(converted.parent.glob(".*building*")), "the staging folder should be gone"


def test_folder_loads_with_auto_classes(converted: Path):
    from transformers import AutoFeatureExtractor, AutoProcessor, AutoTokenizer, MoonshineForConditionalGeneration

    processor = AutoProcessor.from_pretrained(converted)
    assert AutoFeatureExtractor.from_pretrained(converted).sampling_rate == 16000
    tokenizer = AutoTokenizer.from_pretrained(converted)
    assert len(tokenizer) == 32768 and tokenizer.eos_token_id == 2 and tokenizer.bos_token_id == 1
    assert processor.tokenizer("Hello world").input_ids == [1, 15043, 3186, 2]
    model = MoonshineForConditionalGeneration.from_pretrained(converted)
    assert model.config.hidden_size == 416 and model.config.decoder_num_hidden_layers == 8
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr(), "tied"


def test_lead_loader_transcribes_with_converted_model(converted: Path):
    from vocabd.asr.model import load_asr
    from vocabd.asr.transcribe import transcribe
    from vocabd.audio import SAMPLE_RATE, load_audio

    asr = load_asr(converted)
    [text] = transcribe(asr, [load_audio(wheel_files().test_wav, SAMPLE_RATE)])
    assert normalize_transcript(text) == normalize_transcript(EXPECTED_TRANSCRIPT)


def test_build_is_idempotent(converted: Path):
    before = (converted / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    assert build_offline_model(converted) == converted
    assert time.monotonic() - started < 1.0
    assert (converted / "model.safetensors").stat().st_mtime_ns == before


def test_incomplete_folder_is_rebuilt(tmp_path: Path):
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "config.json").write_text("{}")  # a build interrupted before it was renamed into place
    leftover = tmp_path / ".model.building-999999"  # a killed build's staging folder
    leftover.mkdir()
    assert not is_complete(dest)
    assert build_offline_model(dest, verify=False) == dest
    assert is_complete(dest) and json.loads((dest / "config.json").read_text())["model_type"] == "moonshine"
    assert not leftover.exists()


def test_two_processes_build_once(tmp_path: Path):
    dest = tmp_path / "shared-model"
    code = ("import sys; from vocabd.log import configure_logging; configure_logging();"
            "from vocabd.asr.offline import build_offline_model; print(build_offline_model(sys.argv[1], verify=False))")
    children = [subprocess.Popen([sys.executable, "-c", code, str(dest)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [str(dest), str(dest)]
    assert sum(err.count("building offline model") for _, err in outputs) == 1
    assert is_complete(dest) and sorted(p.name for p in tmp_path.iterdir()) == [".shared-model.lock", "shared-model"]


def test_verification_fails_loudly_on_a_broken_model(converted: Path, tmp_path: Path):
    from safetensors.numpy import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(converted, broken, ignore=shutil.ignore_patterns("model.safetensors"))
    weights = load_file(converted / "model.safetensors")
    weights["model.decoder.norm.weight"] = -weights["model.decoder.norm.weight"]
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(OfflineModelError) as error:
        verify_offline_model(broken, against_runtime=False)
    assert "expected 'Ever tried." in str(error.value) and str(broken) in str(error.value)


def test_missing_or_misshaped_weight_is_named(converted: Path):
    from safetensors.numpy import load_file

    weights = load_file(converted / "model.safetensors")
    config = moonshine_config()
    check_complete(weights, config, "wheel")  # the real conversion passes
    del weights["model.decoder.layers.3.mlp.fc1.bias"]
    weights["model.encoder.layers.0.self_attn.q_proj.weight"] = np.zeros((416, 415), np.float32)
    with pytest.raises(ConversionError) as error:
        check_complete(weights, config, "wheel")
    message = str(error.value)
    assert "missing model.decoder.layers.3.mlp.fc1.bias (3328,)" in message
    assert "model.encoder.layers.0.self_attn.q_proj.weight: shape (416, 415), model wants (416, 416)" in message


def test_cli_model_fetch_offline(converted: Path, monkeypatch):
    from vocabd.cli import main

    monkeypatch.setattr(offline, "offline_model_dir", lambda: converted)
    result = CliRunner().invoke(main, ["model", "fetch", "--source", "moonshine-cpp"])
    assert result.exit_code == 0, result.output
    assert str(converted) in result.output


def test_cli_model_fetch_hub_unreachable_suggests_offline(monkeypatch):
    from vocabd.cli import main

    def unreachable(model_id: str, **_):
        raise OSError("Name or service not known")

    monkeypatch.setattr("huggingface_hub.snapshot_download", unreachable)
    result = CliRunner().invoke(main, ["model", "fetch", "--source", "hub", "--model", "UsefulSensors/moonshine-tiny"])
    assert result.exit_code == 1
    assert "unreachable" in result.output and "--source moonshine-cpp" in result.output


# --- the tokenizer ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", list(SENTENCEPIECE_IDS))
def test_token_ids_match_sentencepiece(tokenizer, text: str):
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert ids == SENTENCEPIECE_IDS[text]
    assert tokenizer.decode(ids) == text


def test_tokenizer_layout(tokenizer):
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 258, 32000, 32767]) == [
        "<unk>", "<s>", "</s>", "<0x00>", "<0xFF>", "<<ST_0>>", "<<ST_767>>"]
    emoji = tokenizer("🙂", add_special_tokens=False).input_ids
    assert tokenizer.convert_ids_to_tokens(emoji) == ["▁", "<0xF0>", "<0x9F>", "<0x99>", "<0x82>"]
    assert tokenizer.decode([1, 15043, 32005, 2], skip_special_tokens=True) == "Hello"


def test_truncated_tokenizer_file_is_refused(tmp_path: Path):
    data = wheel_files().tokenizer.read_bytes()
    path = tmp_path / "tokenizer.bin"
    path.write_bytes(data[:-3])
    with pytest.raises(TokenizerFileError, match=str(path)):
        read_tokenizer_bin(path)


# --- reading .ort and placing weights (hand-made graphs) ------------------------------------------------------

def test_dequantize_arithmetic():
    q = np.array([[-128, -1], [0, 127]], dtype=np.int8)
    out = dequantize(q, np.array([0.5], np.float32), np.array([0.25], np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[-63.75, -0.25], [0.25, 63.75]])


def _quantized_matmul_graph(path: str) -> OrtGraph:
    """x @ dequant(q) + bias in the module at node path `path`, spelled the way the wheel's graphs do."""
    q = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)  # ONNX layout: (in, out)
    graph = OrtGraph(path=Path("hand.ort"), initializers={
        "onnx::MatMul_7_quantized": q, "onnx::MatMul_7_scale": np.array([2.0], np.float32),
        "onnx::MatMul_7_zero_point": np.array([1.0], np.float32), "some.bias": np.arange(4, dtype=np.float32)})
    graph.nodes = [
        OrtNode("Cast", "onnx::MatMul_7_cast_node", ("onnx::MatMul_7_quantized",), ("c",), "main"),
        OrtNode("Mul", "onnx::MatMul_7_mul_node", ("c", "onnx::MatMul_7_scale"), ("m",), "main"),
        OrtNode("Add", "onnx::MatMul_7_add_node", ("m", "onnx::MatMul_7_zero_point"), ("w",), "main"),
        OrtNode("MatMul", f"{path}/MatMul", ("x", "w"), ("y",), "main"),
        OrtNode("Add", f"{path}/Add", ("some.bias", "y"), ("z",), "main"),
    ]
    return graph


def test_constant_inputs_follow_the_dequantization_chain():
    graph = _quantized_matmul_graph("/layers.0/mlp/fc1")
    found = {(node.name, index): (source, value) for node, index, source, value in constant_inputs(graph)}
    source, value = found[("/layers.0/mlp/fc1/MatMul", 1)]
    assert source == "onnx::MatMul_7_quantized"
    np.testing.assert_array_equal(value, np.arange(-6, 6).reshape(3, 4) * 2.0 + 1.0)
    assert not any(name.endswith(("_cast_node", "_mul_node", "_add_node")) for name, _ in found)


def test_map_weights_renames_and_transposes():
    weights = map_weights(_quantized_matmul_graph("/model/decoder/layers.2/mlp/up_proj"), "")
    assert set(weights) == {"model.decoder.layers.2.mlp.fc1.weight", "model.decoder.layers.2.mlp.fc1.bias"}
    np.testing.assert_array_equal(weights["model.decoder.layers.2.mlp.fc1.weight"],
                                  (np.arange(-6, 6).reshape(3, 4) * 2.0 + 1.0).T)
    attention = map_weights(_quantized_matmul_graph("/layers.1/self_attn/dense"), "model.encoder.")
    assert "model.encoder.layers.1.self_attn.o_proj.weight" in attention


def test_weight_without_a_home_is_an_error():
    graph = _quantized_matmul_graph("/layers.0/mlp/fc1")
    graph.initializers["onnx::Where_9"] = np.ones(8, np.float32)
    graph.nodes.append(OrtNode("Where", "Where_9", ("cond", "onnx::Where_9", "y"), ("o",), "main"))
    with pytest.raises(ConversionError, match="onnx::Where_9"):
        map_weights(graph, "model.encoder.")


def test_not_an_ort_file_is_refused(tmp_path: Path):
    path = tmp_path / "encoder_model.ort"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(OrtFormatError, match="not an ORT format model"):
        read_ort(path)
