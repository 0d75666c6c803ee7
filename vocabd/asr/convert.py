"""Convert moonshine-cpp's Moonshine base (`.ort` + `tokenizer.bin`) into a transformers model folder.

The `.ort` graphs keep the PyTorch module paths in their node names (`/model/decoder/layers.3/encoder_attn/
k_proj/MatMul`), so each weight is placed by the node that consumes it: MatMul input 1 → `<module>.weight`
(transposed: ONNX multiplies x @ W), Add → `.bias`, Mul → norm `.weight`, Conv → `.weight`/`.bias`, Gather →
embedding. The output projection (a Transpose of the embedding) is tied, as transformers expects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocabd.asr.ort import OrtGraph, constant_inputs
from vocabd.errors import VocabdError
from vocabd.log import get_logger

log = get_logger("vocabd.asr.convert")

RENAMES = {"dense": "o_proj", "up_proj": "fc1", "down_proj": "fc2"}
PARAM_BY_INPUT = {("MatMul", 1): "weight", ("Conv", 1): "weight", ("Conv", 2): "bias", ("Gather", 0): "weight",
                  ("Mul", 1): "weight", ("Add", 0): "bias", ("Add", 1): "bias"}
EMBEDDING = "model.decoder.embed_tokens.weight"
TIED = "proj_out.weight"
ENCODER_PREFIX = "model.encoder."
SAMPLE_RATE = 16000


class ConversionError(VocabdError):
    """The source model does not convert cleanly; the message names the file and every problem."""


@dataclass(frozen=True)
class MoonshineShape:
    """Moonshine base English, as shipped in moonshine-cpp."""

    hidden_size: int = 416
    layers: int = 8
    heads: int = 8
    intermediate_size: int = 1664
    vocab_size: int = 32768
    rope_theta: float = 10000.0
    partial_rotary_factor: float = 0.62


def moonshine_config(shape: MoonshineShape = MoonshineShape()):
    from transformers import MoonshineConfig

    return MoonshineConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.hidden_size, intermediate_size=shape.intermediate_size,
        encoder_num_hidden_layers=shape.layers, decoder_num_hidden_layers=shape.layers,
        encoder_num_attention_heads=shape.heads, decoder_num_attention_heads=shape.heads,
        encoder_num_key_value_heads=shape.heads, decoder_num_key_value_heads=shape.heads,
        encoder_hidden_act="gelu", decoder_hidden_act="silu",
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta,
                         "partial_rotary_factor": shape.partial_rotary_factor},
        bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, tie_word_embeddings=True)


def hf_parameter_name(node_name: str, op_type: str, index: int, prefix: str) -> str | None:
    """The transformers parameter a constant feeding `node_name`'s input `index` becomes, if any."""
    if op_type == "Transpose" and index == 0:
        return TIED
    param = PARAM_BY_INPUT.get((op_type, index))
    modules = node_name.strip("/").split("/")[:-1]
    if param is None or not modules:
        return None
    return prefix + ".".join(RENAMES.get(m, m) for m in modules) + "." + param


def _as_parameter(name: str, op_type: str, value: np.ndarray) -> np.ndarray:
    if op_type == "MatMul":
        return np.ascontiguousarray(value.T)
    if op_type in ("Mul", "Add"):
        return value.reshape(-1)  # norm scales and biases; the group norm's come as (channels, 1)
    return value


def is_weight(source: str, value: np.ndarray) -> bool:
    # Folded graph constants are named after the node that made them ("/rotary_emb/Cast_1_output_0").
    return not source.startswith("/") and value.size > 1 and value.dtype == np.float32


def map_weights(graph: OrtGraph, prefix: str) -> dict[str, np.ndarray]:
    """transformers name → float32 array for every weight `graph` holds; raises if one cannot be placed."""
    weights: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    weight_sources, placed = set(), set()
    for node, index, source, value in constant_inputs(graph):
        if not is_weight(source, value):
            continue
        weight_sources.add(source)
        name = hf_parameter_name(node.name, node.op_type, index, prefix)
        if name is None:
            continue
        param = _as_parameter(name, node.op_type, value)
        if name in weights and sources[name] != source and not np.array_equal(weights[name], param):
            raise ConversionError(f"{graph.path}: {name} gets two different weights ({sources[name]}, {source})")
        weights[name], sources[name] = param, source
        placed.add(source)
    unplaced = sorted(weight_sources - placed)
    if unplaced:
        raise ConversionError(f"{graph.path}: {len(unplaced)} weights have no transformers name: "
                              + ", ".join(unplaced[:10]))
    return weights


def untie_check(weights: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """Drop the output projection after checking it is the token embedding (transformers ties them)."""
    output = weights.pop(TIED, None)
    if output is not None and not np.array_equal(output, weights.get(EMBEDDING)):
        raise ConversionError(f"{path}: the output projection is not the token embedding; cannot tie them")
    return weights


def check_rotary(graph: OrtGraph, config) -> None:
    """The graph's rotary inverse frequencies must be the ones transformers derives from `config`."""
    head_dim = config.hidden_size // config.encoder_num_attention_heads
    dim = int(head_dim * config.rope_parameters["partial_rotary_factor"])
    expected = 1.0 / (config.rope_parameters["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    found = [value.reshape(-1) for node, index, _, value in constant_inputs(graph)
             if node.op_type == "MatMul" and node.name.endswith("rotary_emb/MatMul") and index == 0]
    if not found:
        raise ConversionError(f"{graph.path}: no rotary embedding frequencies found")
    for value in found:
        if value.shape != expected.shape or not np.allclose(value, expected, rtol=1e-5):
            raise ConversionError(f"{graph.path}: rotary frequencies {value.shape} differ from the config's "
                                  f"(theta {config.rope_parameters['rope_theta']}, {dim} rotary dims)")


def check_complete(weights: dict[str, np.ndarray], config, source: str) -> None:
    """Every parameter of the transformers model is filled with the right shape, and nothing else is."""
    import torch
    from transformers import MoonshineForConditionalGeneration

    with torch.device("meta"):
        model = MoonshineForConditionalGeneration(config)
    expected = {name: tuple(p.shape) for name, p in model.state_dict().items() if name != TIED}
    problems = [f"missing {name} {shape}" for name, shape in expected.items() if name not in weights]
    problems += [f"{name}: shape {tuple(weights[name].shape)}, model wants {shape}"
                 for name, shape in expected.items() if name in weights and tuple(weights[name].shape) != shape]
    problems += [f"unexpected {name}" for name in weights if name not in expected]
    if problems:
        raise ConversionError(f"{source}: {len(problems)} problem(s) converting to transformers Moonshine: "
                              + "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else ""))


def convert_weights(encoder: OrtGraph, decoder: OrtGraph, config) -> dict[str, np.ndarray]:
    """The full, checked transformers state dict (without the tied output projection)."""
    check_rotary(encoder, config)
    check_rotary(decoder, config)
    weights = map_weights(encoder, ENCODER_PREFIX)
    for name, value in map_weights(decoder, "").items():
        if not name.startswith(("model.decoder.", TIED)):
            raise ConversionError(f"{decoder.path}: weight {name} is outside the decoder")
        weights[name] = value
    weights = untie_check(weights, decoder.path)
    check_complete(weights, config, f"{encoder.path.parent}")
    log.info("weights placed", tensors=len(weights), parameters=sum(w.size for w in weights.values()))
    return weights


def save_weights(weights: dict[str, np.ndarray], folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    path = folder / "model.safetensors"
    save_file({name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in weights.items()}, str(path),
              metadata={"format": "pt"})
    return path


def save_configs(config, folder: Path) -> None:
    from transformers import GenerationConfig

    config.save_pretrained(folder)
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2, decoder_start_token_id=1).save_pretrained(folder)


def save_processor(tokenizer_bin: Path, folder: Path) -> None:
    """Tokenizer + Wav2Vec2-style feature extractor (16 kHz raw audio in), as `AutoProcessor` loads them."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Processor

    from vocabd.asr.tokenizer import build_fast_tokenizer

    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
                                        do_normalize=False, return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=build_fast_tokenizer(tokenizer_bin)).save_pretrained(folder)
    features.save_pretrained(folder)  # preprocessor_config.json, for AutoFeatureExtractor and older transformers
    portable_tokenizer_class(folder / "tokenizer_config.json")


def portable_tokenizer_class(path: Path) -> None:
    # transformers 5 writes its internal "TokenizersBackend"; the public name loads in 4.x and 5.x alike.
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
