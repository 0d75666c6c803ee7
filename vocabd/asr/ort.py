"""Read the weights out of an onnxruntime `.ort` model (a flatbuffer) without running it.

onnxruntime ships Python bindings for its flatbuffer schema in `onnxruntime/tools/ort_format_model/`; we
walk the graph (and the `If` branches of a merged decoder), keep every initializer and node, and resolve
each node input back to a constant: a plain float initializer, or an int8 one that the graph dequantizes
with a Cast → Mul(scale) → Add(offset) chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vocabd.errors import VocabdError

# onnx TensorProto data types that weights use here.
_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("u1"), 3: np.dtype("i1"), 6: np.dtype("<i4"), 7: np.dtype("<i8"),
           10: np.dtype("<f2"), 11: np.dtype("<f8")}


class OrtFormatError(VocabdError):
    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


@dataclass(frozen=True)
class OrtNode:
    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    graph: str  # "main", or the attribute name of the subgraph it lives in ("then_branch", ...)


@dataclass
class OrtGraph:
    path: Path
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: list[OrtNode] = field(default_factory=list)


def dequantize(q: np.ndarray, scale: np.ndarray | float, offset: np.ndarray | float) -> np.ndarray:
    """The graph's own dequantization: `float(q) * scale + offset` (one scale and offset per tensor)."""
    return (q.astype(np.float32) * np.float32(np.asarray(scale).item())
            + np.float32(np.asarray(offset).item())).astype(np.float32)


def _fbs():
    # Importing the package puts its generated flatbuffer bindings (`ort_flatbuffers_py`) on sys.path.
    import onnxruntime.tools.ort_format_model  # noqa: F401
    from ort_flatbuffers_py.fbs.AttributeType import AttributeType
    from ort_flatbuffers_py.fbs.InferenceSession import InferenceSession

    return InferenceSession, AttributeType


def _tensor_array(tensor, path: Path) -> np.ndarray:
    name = tensor.Name().decode()
    dtype = _DTYPES.get(tensor.DataType())
    if dtype is None:
        raise OrtFormatError(path, f"initializer {name!r} has unsupported data type {tensor.DataType()}")
    dims = [int(d) for d in tensor.DimsAsNumpy()] if tensor.DimsLength() else []
    raw = tensor.RawDataAsNumpy() if tensor.RawDataLength() else np.zeros(0, np.uint8)
    count = int(np.prod(dims)) if dims else 1
    if raw.size != count * dtype.itemsize:
        if tensor.ExternalDataOffset() >= 0:
            raise OrtFormatError(path, f"initializer {name!r} keeps its data outside the file; not supported")
        if count == 0:
            return np.zeros(dims, dtype)
        raise OrtFormatError(path, f"initializer {name!r}: {raw.size} bytes for shape {dims} of {dtype}")
    return np.frombuffer(raw.tobytes(), dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _walk(graph, tag: str, out: OrtGraph, attribute_type) -> None:
    for i in range(graph.InitializersLength()):
        tensor = graph.Initializers(i)
        out.initializers[tensor.Name().decode()] = _tensor_array(tensor, out.path)
    for i in range(graph.NodesLength()):
        node = graph.Nodes(i)
        out.nodes.append(OrtNode(
            op_type=node.OpType().decode(), name=node.Name().decode(),
            inputs=tuple(node.Inputs(j).decode() for j in range(node.InputsLength())),
            outputs=tuple(node.Outputs(j).decode() for j in range(node.OutputsLength())), graph=tag))
        for j in range(node.AttributesLength()):
            attribute = node.Attributes(j)
            if attribute.Type() == attribute_type.GRAPH:
                _walk(attribute.G(), attribute.Name().decode(), out, attribute_type)


def read_ort(path: Path) -> OrtGraph:
    """Every initializer (as numpy, not yet dequantized) and every node of an `.ort` file, subgraphs included."""
    path = Path(path)
    try:
        buffer = bytearray(path.read_bytes())
    except OSError as e:
        raise OrtFormatError(path, f"cannot read: {e.strerror or e}") from e
    session_type, attribute_type = _fbs()
    if not session_type.InferenceSessionBufferHasIdentifier(buffer, 0):
        raise OrtFormatError(path, "not an ORT format model (missing the 'ORTM' flatbuffer identifier)")
    model = session_type.GetRootAsInferenceSession(buffer, 0).Model()
    if model is None or model.Graph() is None:
        raise OrtFormatError(path, "ORT file holds no model graph")
    graph = OrtGraph(path=path)
    _walk(model.Graph(), "main", graph, attribute_type)
    return graph


def initializer_views(buffer: bytearray, path: Path) -> dict[str, list[np.ndarray]]:
    """Writable uint8 views into `buffer` (an `.ort` file's bytes) of every initializer's raw data, by name.

    Writing into a view patches the model in place (same size, same dtype); subgraphs are included.
    """
    session_type, attribute_type = _fbs()
    if not session_type.InferenceSessionBufferHasIdentifier(buffer, 0):
        raise OrtFormatError(path, "not an ORT format model (missing the 'ORTM' flatbuffer identifier)")
    views: dict[str, list[np.ndarray]] = {}

    def walk(graph) -> None:
        for i in range(graph.InitializersLength()):
            tensor = graph.Initializers(i)
            if tensor.RawDataLength():
                views.setdefault(tensor.Name().decode(), []).append(tensor.RawDataAsNumpy())
        for i in range(graph.NodesLength()):
            node = graph.Nodes(i)
            for j in range(node.AttributesLength()):
                if node.Attributes(j).Type() == attribute_type.GRAPH:
                    walk(node.Attributes(j).G())

    walk(session_type.GetRootAsInferenceSession(buffer, 0).Model().Graph())
    return views


def quantized_initializers(graph: OrtGraph) -> dict[str, tuple[str, str]]:
    """int8 initializer name → (its scale initializer, its offset initializer), for every dequantization chain."""
    producers = {output: node for node in graph.nodes for output in node.outputs}
    found = {}
    for node in graph.nodes:
        if node.op_type == "Add" and (chain := _dequant_chain(graph, producers, node.outputs[0])):
            cast, mul, add = chain
            found[cast.inputs[0]] = (mul.inputs[1], add.inputs[1])
    return found


def _dequant_chain(graph: OrtGraph, producers: dict[str, OrtNode], value: str) -> tuple[OrtNode, ...] | None:
    """The (cast, mul, add) nodes if `value` is `Add(Mul(Cast(int8 initializer), scale), offset)` (the initializer
    is float32 where `vocabd export` stored a changed weight exactly)."""
    add = producers.get(value)
    if add is None or add.op_type != "Add" or len(add.inputs) != 2:
        return None
    mul = producers.get(add.inputs[0])
    if mul is None or mul.op_type != "Mul" or len(mul.inputs) != 2:
        return None
    cast = producers.get(mul.inputs[0])
    if cast is None or cast.op_type != "Cast" or cast.inputs[0] not in graph.initializers:
        return None
    scale, offset = graph.initializers.get(mul.inputs[1]), graph.initializers.get(add.inputs[1])
    if scale is None or offset is None or scale.size != 1 or offset.size != 1:
        return None
    if graph.initializers[cast.inputs[0]].dtype not in (np.int8, np.uint8, np.float32):  # float: a vocabd export
        return None
    return cast, mul, add


def constant_inputs(graph: OrtGraph) -> list[tuple[OrtNode, int, str, np.ndarray]]:
    """(node, input index, source initializer, float value) for every node input that is a constant.

    Inputs produced by a dequantization chain count as constants (reported dequantized, under the int8
    initializer's name); the chain's own Cast/Mul/Add nodes are left out.
    """
    producers = {output: node for node in graph.nodes for output in node.outputs}
    chains = {node.outputs[0]: chain for node in graph.nodes
              if node.op_type == "Add" and (chain := _dequant_chain(graph, producers, node.outputs[0]))}
    in_chain = {id(member) for chain in chains.values() for member in chain}
    dequantized: dict[str, np.ndarray] = {}
    found = []
    for node in graph.nodes:
        if id(node) in in_chain:
            continue
        for index, value in enumerate(node.inputs):
            if value in graph.initializers:
                found.append((node, index, value, graph.initializers[value]))
            elif value in chains:
                cast, mul, add = chains[value]
                source = cast.inputs[0]
                if source not in dequantized:
                    dequantized[source] = dequantize(graph.initializers[source], graph.initializers[mul.inputs[1]],
                                                     graph.initializers[add.inputs[1]])
                found.append((node, index, source, dequantized[source]))
    return found
