"""The moonshine-cpp layout (`encoder_model.ort`, `decoder_model_merged.ort`, `tokenizer.bin`) of the merged model.

The wheel's graphs are kept; only the weight initializers whose values the adapter changed are rewritten in
the flatbuffer bytes. The wheel stores each large weight as int8 with one scale and one offset per tensor
(`q * scale + offset` before a plain MatMul), and the base weights sit exactly on that grid: an adapter's
change is mostly smaller than half a step, so requantizing the merged weight gives back the base's codes.
A changed int8 tensor is therefore stored as float32 with scale 1 and offset 0: the graph's Cast → Mul → Add
then yields the merged weight exactly. The float data is appended to the file and the tensor's data type,
raw-data offset and graph value type are patched in place. Only possible when the base is the offline build
from that wheel (the same graphs and shapes).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vocabd.asr.convert import ENCODER_PREFIX, hf_parameter_name, is_weight
from vocabd.asr.model import OFFLINE_MODEL, Asr
from vocabd.asr.offline import offline_model_dir, wheel_files
from vocabd.asr.ort import OrtGraph, _fbs, constant_inputs, initializer_views, quantized_initializers, read_ort
from vocabd.child import child_env, python_command
from vocabd.errors import VocabdError
from vocabd.log import get_logger

log = get_logger("vocabd.export.moonshine_cpp")

ENCODER = "encoder_model.ort"
DECODER = "decoder_model_merged.ort"
TOKENIZER = "tokenizer.bin"
FLOAT = 1  # onnx TensorProto.FLOAT
# flatbuffer field slots (vtable offsets) of the ORT schema: Tensor.data_type, Tensor.raw_data, TypeInfo.value,
# TensorTypeAndShape.elem_type
TENSOR_DATA_TYPE, TENSOR_RAW_DATA, TYPE_INFO_VALUE, ELEM_TYPE = 10, 12, 8, 4


@dataclass
class PatchResult:
    tensors: int = 0  # initializers rewritten
    as_float: int = 0  # int8 initializers now stored as float32
    int8_kept: list[float] = field(default_factory=list)  # per changed int8 tensor: share of the change int8 keeps
    step_ratio: list[float] = field(default_factory=list)  # per changed int8 tensor: median |change| / step


def require_offline_base(asr: Asr) -> None:
    if asr.path.resolve() != offline_model_dir().resolve():
        raise VocabdError(f"--format moonshine-cpp needs the offline base model ({OFFLINE_MODEL}: Moonshine base from "
                          f"the moonshine-cpp wheel) because it rewrites that wheel's graphs; {asr.name} is another "
                          "model: export it with --format onnx (onnxruntime) or --format hf instead")


def onnx_layout(weight: np.ndarray, op_type: str, shape: tuple[int, ...]) -> np.ndarray:
    """A transformers parameter in the shape the graph's constant has (MatMul multiplies x @ W)."""
    value = weight.T if op_type == "MatMul" else weight
    return np.ascontiguousarray(value.reshape(shape), dtype=np.float32)


def changed_constants(graph: OrtGraph, weights: dict[str, np.ndarray],
                      prefix: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Initializer name → (its value in the graph, its new value), both float in graph layout, for every weight
    `weights` changes."""
    changed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
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
        if source in changed and not np.array_equal(changed[source][1], new):
            raise VocabdError(f"{graph.path}: initializer {source} would get two different weights")
        changed[source] = (value, new)
    return changed


def int8_fidelity(base: np.ndarray, new: np.ndarray, scale: float, offset: float) -> tuple[float, float]:
    """What requantizing the new weight on the tensor's int8 grid would do: the share of the change it keeps
    (1 - |requantized - new| / |new - base|, as norms), and the median |change| in quantization steps."""
    codes = np.clip(np.rint((new - offset) / scale), -128, 127)
    restored = codes.astype(np.float32) * np.float32(scale) + np.float32(offset)
    change = np.linalg.norm(new - base)
    kept = 1.0 - float(np.linalg.norm(restored - new) / change) if change else 1.0
    return kept, float(np.median(np.abs(new - base)) / scale)


def _graphs(graph):
    """A flatbuffer graph and every subgraph (the merged decoder's If branches)."""
    _, attribute_type = _fbs()
    yield graph
    for i in range(graph.NodesLength()):
        node = graph.Nodes(i)
        for j in range(node.AttributesLength()):
            if node.Attributes(j).Type() == attribute_type.GRAPH:
                yield from _graphs(node.Attributes(j).G())


def _field(table, slot: int, path: Path) -> int:
    """Where a flatbuffer table's field lies in the buffer (it must be stored, not left to its default)."""
    offset = table.Offset(slot)
    if not offset:
        raise VocabdError(f"{path}: a tensor field vocabd must patch is not stored in the file; cannot patch it")
    return table.Pos + offset


def as_float_initializers(buffer: bytearray, values: dict[str, np.ndarray], path: Path) -> bytes:
    """`buffer` (an `.ort` file) with the named initializers turned into float32 tensors holding `values`.

    The data is appended after the flatbuffer (16-byte aligned) and each tensor's raw-data offset pointed at
    it (flatbuffer offsets point forward, so data at the end is reachable from anywhere); the tensor's data
    type and the graph's value type for it become float.
    """
    session_type, _ = _fbs()
    tail = bytearray()
    tensors, typed = set(), set()
    for graph in _graphs(session_type.GetRootAsInferenceSession(buffer, 0).Model().Graph()):
        for i in range(graph.InitializersLength()):
            tensor = graph.Initializers(i)
            name = tensor.Name().decode()
            if name not in values:
                continue
            struct.pack_into("<i", buffer, _field(tensor._tab, TENSOR_DATA_TYPE, path), FLOAT)
            data = np.ascontiguousarray(values[name], "<f4").tobytes()
            start = len(buffer) + len(tail)
            tail += bytes((-(start + 4)) % 16)
            vector = len(buffer) + len(tail)
            tail += struct.pack("<I", len(data)) + data
            where = _field(tensor._tab, TENSOR_RAW_DATA, path)
            struct.pack_into("<I", buffer, where, vector - where)
            tensors.add(name)
        for i in range(graph.NodeArgsLength()):
            arg = graph.NodeArgs(i)
            name = arg.Name().decode()
            if name in values and arg.Type() is not None:
                info = arg.Type()._tab
                tensor_type = type(info)(info.Bytes, info.Indirect(_field(info, TYPE_INFO_VALUE, path)))
                struct.pack_into("<i", buffer, _field(tensor_type, ELEM_TYPE, path), FLOAT)
                typed.add(name)
    missing = sorted(set(values) - (tensors & typed))
    if missing:
        raise VocabdError(f"{path}: cannot store {len(missing)} initializer(s) as float: {', '.join(missing[:5])}")
    return bytes(buffer) + bytes(tail)


def patch_ort(source: Path, dest: Path, weights: dict[str, np.ndarray], prefix: str) -> PatchResult:
    """Write `source` to `dest` with the initializers that `weights` changes rewritten."""
    graph = read_ort(source)
    changed = changed_constants(graph, weights, prefix)
    quantized = quantized_initializers(graph)
    buffer = bytearray(source.read_bytes())
    views = initializer_views(buffer, source)
    result = PatchResult()
    as_float: dict[str, np.ndarray] = {}

    def write(name: str, array: np.ndarray) -> None:
        data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
        if name not in views:
            raise VocabdError(f"{source}: initializer {name} not found in the flatbuffer")
        for view in views[name]:
            if view.size != data.size:
                raise VocabdError(f"{source}: initializer {name} holds {view.size} bytes, the new value {data.size}")
            view[:] = data

    for name, (old, new) in changed.items():
        if name in quantized:
            scale_name, offset_name = quantized[name]
            if sum(scale_name in pair or offset_name in pair for pair in quantized.values()) > 1:
                raise VocabdError(f"{source}: {name} shares its scale or offset with another tensor")
            scale, offset = (float(graph.initializers[n].reshape(-1)[0]) for n in (scale_name, offset_name))
            kept, ratio = int8_fidelity(old, new, scale, offset)
            result.int8_kept.append(kept)
            result.step_ratio.append(ratio)
            write(scale_name, np.ones(graph.initializers[scale_name].shape, "<f4"))
            write(offset_name, np.zeros(graph.initializers[offset_name].shape, "<f4"))
            as_float[name] = new
        else:
            write(name, new.astype("<f4"))
        result.tensors += 1
    del views  # they pin the buffer
    result.as_float = len(as_float)
    dest.write_bytes(as_float_initializers(buffer, as_float, source) if as_float else bytes(buffer))
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
    kept, ratio = encoder.int8_kept + decoder.int8_kept, encoder.step_ratio + decoder.step_ratio
    summary = {"tensors_rewritten": encoder.tensors + decoder.tensors,
               "int8_tensors_stored_as_float": encoder.as_float + decoder.as_float,
               # what per-tensor int8 would have kept of the adapter's change (why those tensors are float now)
               "int8_would_keep_of_the_change": {"median": _median(kept), "max": round(max(kept), 4) if kept else None},
               "median_change_in_quantization_steps": _median(ratio), "wheel": files.version}
    log.info("moonshine-cpp files written", out=str(out), **summary)
    return summary


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 4) if values else None


def runtime_transcribe(folder: Path, wavs: list[Path], timeout: float = 600,
                       on_clip: Callable[[], None] | None = None) -> tuple[list[str], float]:
    """The moonshine-cpp runtime on 16 kHz WAV files with the model in `folder` (a child process: it loads
    its own onnxruntime library): the texts, and the seconds they took after the model was loaded."""
    code = ("import sys, time, moonshine_cpp\n"
            "m = moonshine_cpp.MoonshineModel(model_dir_path=sys.argv[1])\n"
            "for w in sys.argv[2:]:\n"
            "    start = time.perf_counter()\n"
            "    text = m.transcribe_wav(w).strip().replace('\\n', ' ')\n"
            "    print(f'{time.perf_counter() - start:.6f}\\t{text}', flush=True)\n")
    with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a chatty stderr cannot block the child
        child = subprocess.Popen(python_command("-c", code, str(folder), *map(str, wavs)), stdout=subprocess.PIPE,
                                 stderr=errors, text=True, env=child_env())
        timer = threading.Timer(timeout, child.kill)
        timer.start()
        texts, seconds = [], 0.0
        try:
            for line in child.stdout:
                took, _, text = line.rstrip("\n").partition("\t")
                texts.append(text)
                seconds += float(took)
                if on_clip is not None:
                    on_clip()
        except BaseException:
            child.kill()  # the child started above
            raise
        finally:
            child.wait()
            timer.cancel()
        errors.seek(0)
        error = errors.read()
    if child.returncode != 0:
        raise VocabdError(f"{folder}: the moonshine-cpp runtime failed (exit {child.returncode}): {error.strip()[-500:]}")
    if len(texts) != len(wavs):
        raise VocabdError(f"{folder}: the moonshine-cpp runtime printed {len(texts)} lines for {len(wavs)} files")
    return texts, seconds
