"""Multiply-accumulate counts per layer from ONNX shape inference, at the input sizes actually run.

MACs explain *why* one model could be faster than another; they never stand in
for a measured time (DESIGN.md §4), so reports show them next to latency.
Counted: Conv (and its integer, QLinear and fused forms, grouped and depthwise), ConvTranspose, Gemm, MatMul
(and its integer, quantized and fused forms) including activation × activation products (attention's Q·Kᵀ and
weights·V, batched and broadcast), two-operand Einsum, the attention ops (ONNX and contrib) and the recurrent
LSTM, GRU and RNN (and the dynamically quantized LSTM). Elementwise ops, pooling and reshapes are not counted: they are not where MACs are.

Shapes come from inference at the bound input shapes: the inputs' dims are made concrete first, then ONNX's
shape inference (with data propagation) runs, and when it leaves a counted layer's shapes unresolved (a Slice or
Reshape whose sizes are computed from `Shape`, as in exported position ids) ONNX Runtime's symbolic shape
inference fills them in. When a layer's shapes are still unresolved (inference stops at a contrib op such as
ONNX Runtime's DynamicQuantizeLSTM), the model is run once on zeros at the bound shapes with those tensors as
extra outputs, and their measured shapes are used. A layer whose shapes none of these resolve is listed with
MACs unknown, never guessed; so is a counted op inside an If/Loop/Scan subgraph, whose runs (which branch, how many iterations) depend on data.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.model.onnx_graphs import nested_graphs, walk_graphs

CONV_WEIGHT_INPUT = {"Conv": 1, "FusedConv": 1, "ConvInteger": 1, "QLinearConv": 3, "NhwcFusedConv": 1}
MATMUL_OPS = {"MatMul", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
              "FusedMatMul", "MatMulNBits"}
GEMM_OPS = {"Gemm", "QGemm", "FusedGemm"}
ATTENTION_OPS = {"Attention", "MultiHeadAttention", "QAttention", "GroupQueryAttention"}
RECURRENT_OPS = {"LSTM", "GRU", "RNN", "DynamicQuantizeLSTM"}
_FLOAT = 1  # onnx.TensorProto.FLOAT: the element type recurrent outputs are declared with
COUNTED_OPS = {*CONV_WEIGHT_INPUT, "ConvTranspose", *MATMUL_OPS, *GEMM_OPS, *ATTENTION_OPS, *RECURRENT_OPS, "Einsum"}


@dataclass(frozen=True)
class LayerMacs:
    name: str
    op_type: str
    macs: int | None

    def to_dict(self) -> dict:
        return {"name": self.name, "op_type": self.op_type, "macs": self.macs}


@dataclass(frozen=True)
class MacsReport:
    layers: tuple[LayerMacs, ...]

    @property
    def total(self) -> int:
        return sum(layer.macs or 0 for layer in self.layers)

    @property
    def unknown(self) -> int:
        return sum(1 for layer in self.layers if layer.macs is None)

    def unknown_by_op(self) -> dict[str, int]:
        """Layers not counted, by op type, most first."""
        return dict(Counter(layer.op_type for layer in self.layers if layer.macs is None).most_common())

    def to_dict(self) -> dict:
        layers = [layer.to_dict() for layer in self.layers]
        return {"total": self.total, "unknown_layers": self.unknown, "unknown_by_op": self.unknown_by_op(),
                "layers": layers}


def count_macs(model_path: Path, input_shapes: Mapping[str, tuple[int, ...]]) -> MacsReport:
    """MACs of every counted layer when the model runs on inputs of `input_shapes`."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    _bind_input_shapes(model, input_shapes)
    shapes = _inferred_shapes(model)
    if _unresolved(model, shapes):
        shapes = {**_runtime_shapes(model_path, model, input_shapes, shapes), **shapes}
    layers = []
    for index, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{index}"
        if node.op_type in COUNTED_OPS:
            layers.append(LayerMacs(name, node.op_type, node_macs(node, shapes)))
        for subgraph in nested_graphs(node):
            layers.extend(LayerMacs(f"{name}/{inner.name or inner.op_type}", inner.op_type, None)
                          for inner in subgraph.node if inner.op_type in COUNTED_OPS)
    return MacsReport(tuple(layers))


def node_macs(node, shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    """MACs of one node of a counted op type (COUNTED_OPS) given its tensors' shapes; None when they are unknown."""
    op = node.op_type
    out = shapes.get(node.output[0]) if node.output else None
    inputs = [shapes.get(name) if name else None for name in node.input]
    if op in CONV_WEIGHT_INPUT:
        weight = _input(inputs, CONV_WEIGHT_INPUT[op])
        if out is None or weight is None:
            return None
        return math.prod(out) * math.prod(weight[1:])  # each output: (C/groups) × kernel MACs
    if op == "ConvTranspose":
        x, weight = _input(inputs, 0), _input(inputs, 1)
        if x is None or weight is None:
            return None
        return math.prod(x) * math.prod(weight[1:])  # each input element feeds (C_out/groups) × kernel outputs
    if op in GEMM_OPS or op in MATMUL_OPS:
        a = _input(inputs, 0)
        if out is None or not a:
            return None
        transposed = _attribute(node, "transA", 0)
        return math.prod(out) * (a[-2] if transposed and len(a) >= 2 else a[-1])  # batched: out holds the batch
    if op in ATTENTION_OPS:
        return _attention_macs(op, inputs)
    if op in RECURRENT_OPS:
        return _recurrent_macs(node, inputs)
    if op == "Einsum":
        return _einsum_macs(_attribute(node, "equation", b""), inputs)
    raise ValueError(f"{op} is not a counted op type")


def _bind_input_shapes(model, input_shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Makes the inputs' dims concrete and drops the exporter's own (symbolic) intermediate and output shapes."""
    for value in model.graph.input:
        shape = input_shapes.get(value.name)
        if shape is None or not value.type.HasField("tensor_type"):
            continue
        tensor_type = value.type.tensor_type
        tensor_type.ClearField("shape")
        for size in shape:
            tensor_type.shape.dim.add().dim_value = int(size)
    del model.graph.value_info[:]
    for value in model.graph.output:
        if value.type.HasField("tensor_type"):
            value.type.tensor_type.ClearField("shape")


def _inferred_shapes(model) -> dict[str, tuple[int, ...]]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError):
        inferred = model  # shapes stay unknown where inference fails; those layers report MACs as unknown
    shapes = _known_shapes(inferred)
    if not _unresolved(model, shapes):
        return shapes
    shapes = {**_symbolic_shapes(model), **shapes}
    if _unresolved(model, shapes) and _declare_recurrent_outputs(model, shapes):
        return _inferred_shapes(model)  # again, now that what follows a quantized LSTM has its input shape
    return shapes


def _unresolved(model, shapes: Mapping[str, tuple[int, ...]]) -> bool:
    return any(node_macs(node, shapes) is None for node in model.graph.node if node.op_type in COUNTED_OPS)


def _declare_recurrent_outputs(model, shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Declares the output shapes of recurrent ops neither inference knows (contrib DynamicQuantizeLSTM)."""
    from onnx import helper

    declared = False
    for node in model.graph.node:
        if node.op_type not in RECURRENT_OPS:
            continue
        x, weights, hidden = shapes.get(node.input[0]), shapes.get(node.input[1]), _attribute(node, "hidden_size", 0)
        if x is None or weights is None or len(x) != 3 or not hidden:
            continue
        batch_first = _attribute(node, "layout", 0)
        (steps, batch), directions = ((x[1], x[0]) if batch_first else (x[0], x[1])), weights[0]
        sequence = (batch, steps, directions, hidden) if batch_first else (steps, directions, batch, hidden)
        final = (batch, directions, hidden) if batch_first else (directions, batch, hidden)
        for name, shape in zip(node.output, (sequence, final, final)):
            if name and name not in shapes:
                model.graph.value_info.append(helper.make_tensor_value_info(name, _FLOAT, shape))
                declared = True
    return declared


def _symbolic_shapes(model) -> dict[str, tuple[int, ...]]:
    """ONNX Runtime's symbolic shape inference: it resolves Slice/Reshape sizes computed from `Shape` chains."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    # SymbolicShapeInference.infer_shapes, minus its habit of saving the partial model and its weights into the
    # working directory when it gives up part way: the shapes it did resolve are kept instead.
    inference = SymbolicShapeInference(2**31 - 1, True, False, 0)  # int_max, auto_merge, guess_output_rank, verbose
    try:
        inference._preprocess(model)
        while inference.run_:
            inference._infer_impl()
        inference._update_output_from_vi()
    except Exception:  # noqa: BLE001 - it raises bare Exception/AssertionError on ops it cannot follow
        return {}
    return _known_shapes(inference.out_mp_)


def _runtime_shapes(model_path: Path, model, input_shapes: Mapping[str, tuple[int, ...]],
                    shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The shapes of the unresolved counted layers' tensors, from one run on zeros; {} when the model cannot run so."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper

    wanted = {name for node in model.graph.node if node.op_type in COUNTED_OPS and node_macs(node, shapes) is None
              for name in [*node.input, *node.output] if name and name not in shapes}
    if not wanted:
        return {}
    try:
        runnable = onnx.load(str(model_path))
        known_outputs = {value.name for value in runnable.graph.output}
        runnable.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in sorted(wanted - known_outputs))
        session = ort.InferenceSession(runnable.SerializeToString(), providers=["CPUExecutionProvider"])
        feed = {value.name: np.zeros(input_shapes[value.name],
                                     helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
                for value in runnable.graph.input if value.name in input_shapes}
        names = [output.name for output in session.get_outputs() if output.name in wanted]
        return {name: tuple(np.shape(array)) for name, array in zip(names, session.run(names, feed))}
    except Exception:  # noqa: BLE001 - a model that cannot run on zeros here keeps those layers' MACs unknown
        return {}


def _known_shapes(model) -> dict[str, tuple[int, ...]]:
    import onnx

    shapes = {}
    for graph in walk_graphs(model.graph):
        for value in [*graph.input, *graph.value_info, *graph.output]:
            if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
                continue
            dims = value.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                shapes[value.name] = tuple(int(d.dim_value) for d in dims)
        for tensor in graph.initializer:
            shapes[tensor.name] = tuple(int(d) for d in tensor.dims)
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                value = next((a for a in node.attribute if a.name == "value"), None)
                if value is not None and value.type == onnx.AttributeProto.TENSOR:
                    shapes.setdefault(node.output[0], tuple(int(d) for d in value.t.dims))
    return shapes


def _input(inputs: list, index: int) -> tuple[int, ...] | None:
    return inputs[index] if len(inputs) > index else None


def _attribute(node, name: str, default):
    from onnx import helper

    found = next((attribute for attribute in node.attribute if attribute.name == name), None)
    return default if found is None else helper.get_attribute_value(found)


def _attention_macs(op: str, inputs) -> int | None:
    """Q·Kᵀ and weights·V (plus the fused input projection of contrib Attention/QAttention).

    Query (batch, length, hidden) or (batch, heads, length, head size); the keys' length is read from the key
    (batch, kv length, hidden), (batch, heads, kv length, head size) or packed (batch, kv length, heads, 2, size).
    """
    query, key, value = _input(inputs, 0), _input(inputs, 1), _input(inputs, 2)
    if query is None or len(query) not in (3, 4):
        return None
    if op in ("Attention", "QAttention") and key is not None and len(key) == 2:  # contrib: input × packed QKV weights
        if len(query) != 3:
            return None
        batch, length, width = query
        hidden = key[1] // 3
        return batch * length * width * key[1] + 2 * batch * length * length * hidden
    if len(query) == 4:
        batch, heads, length, size = query
        kv_length = key[2] if key is not None and len(key) == 4 else length
        value_size = value[-1] if value is not None and len(value) == 4 else size
        return batch * heads * length * kv_length * (size + value_size)
    batch, length, width = query
    kv_length = key[1] if key is not None and len(key) in (3, 5) else length
    value_width = value[-1] if value is not None and len(value) == 3 else width
    return batch * length * kv_length * (width + value_width)


def _recurrent_macs(node, inputs) -> int | None:
    """Every step, for every sequence and direction, multiplies the input by W and the hidden state by R."""
    x, weights, recurrence = _input(inputs, 0), _input(inputs, 1), _input(inputs, 2)
    if x is None or weights is None or recurrence is None or len(x) != 3:
        return None
    steps, batch = (x[1], x[0]) if _attribute(node, "layout", 0) else (x[0], x[1])
    return steps * batch * (math.prod(weights) + math.prod(recurrence))


def _einsum_macs(equation: bytes | str, inputs) -> int | None:
    """A two-operand contraction costs one MAC per combination of all its index values."""
    text = equation.decode() if isinstance(equation, bytes) else equation
    terms = text.replace(" ", "").split("->")[0].split(",")
    if len(terms) != 2 or len(inputs) != 2 or any(shape is None for shape in inputs):
        return None
    sizes: dict[str, int] = {}
    for term, shape in zip(terms, inputs):
        labels = list(term.replace("...", ""))
        if "..." in term:
            broadcast = len(shape) - len(labels)
            at = term.index("...")
            labels[at:at] = [f"...{broadcast - i}" for i in range(broadcast)]  # aligned from the right
        if len(labels) != len(shape):
            return None
        for label, size in zip(labels, shape):
            sizes[label] = max(sizes.get(label, 1), size)
    return math.prod(sizes.values())
