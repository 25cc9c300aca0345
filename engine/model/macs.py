"""Multiply-accumulate counts per layer from ONNX shape inference, at the input sizes actually run.

MACs explain *why* one model could be faster than another; they never stand in
for a measured time (DESIGN.md §4), so reports show them next to latency.
Counted: Conv (and its integer, QLinear and fused forms), ConvTranspose, Gemm,
MatMul (and its integer forms) and the attention contrib ops. A layer whose
shapes inference cannot resolve is listed with MACs unknown, not guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONV_WEIGHT_INPUT = {"Conv": 1, "FusedConv": 1, "ConvInteger": 1, "QLinearConv": 3, "NhwcFusedConv": 1}
MATMUL_OPS = {"MatMul", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
              "FusedMatMul"}
GEMM_OPS = {"Gemm", "QGemm", "FusedGemm"}
ATTENTION_OPS = {"Attention", "MultiHeadAttention", "QAttention", "GroupQueryAttention"}


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

    def to_dict(self) -> dict:
        layers = [layer.to_dict() for layer in self.layers]
        return {"total": self.total, "unknown_layers": self.unknown, "layers": layers}


def count_macs(model_path: Path, input_shapes: Mapping[str, tuple[int, ...]]) -> MacsReport:
    """MACs of every counted layer when the model runs on inputs of `input_shapes`."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    for value in model.graph.input:
        shape = input_shapes.get(value.name)
        if shape is None or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        if len(dims) == len(shape):
            for dim, size in zip(dims, shape):
                dim.Clear()
                dim.dim_value = int(size)
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError):
        pass  # shapes stay unknown where inference fails; those layers report MACs as unknown
    shapes = _known_shapes(model)
    layers = []
    for index, node in enumerate(model.graph.node):
        macs = _node_macs(node, shapes)
        if macs is _NOT_COUNTED:
            continue
        layers.append(LayerMacs(node.name or f"{node.op_type}_{index}", node.op_type, macs))
    return MacsReport(tuple(layers))


_NOT_COUNTED = object()


def _known_shapes(model) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            continue
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    for tensor in model.graph.initializer:
        shapes[tensor.name] = tuple(int(d) for d in tensor.dims)
    return shapes


def _node_macs(node, shapes: dict[str, tuple[int, ...]]):
    op = node.op_type
    out = shapes.get(node.output[0]) if node.output else None
    inputs = [shapes.get(name) if name else None for name in node.input]
    if op in CONV_WEIGHT_INPUT:
        weight = inputs[CONV_WEIGHT_INPUT[op]] if len(inputs) > CONV_WEIGHT_INPUT[op] else None
        if out is None or weight is None:
            return None
        return math.prod(out) * math.prod(weight[1:])  # each output: (C/groups) × kernel MACs
    if op == "ConvTranspose":
        x, weight = inputs[0], inputs[1] if len(inputs) > 1 else None
        if x is None or weight is None:
            return None
        return math.prod(x) * math.prod(weight[1:])
    if op in GEMM_OPS:
        a = inputs[0] if inputs else None
        if out is None or a is None:
            return None
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        return math.prod(out) * (a[0] if trans_a else a[-1])
    if op in MATMUL_OPS:
        a = inputs[0]
        if out is None or a is None:
            return None
        return math.prod(out) * a[-1]
    if op in ATTENTION_OPS:
        return _attention_macs(op, inputs)
    return _NOT_COUNTED


def _attention_macs(op: str, inputs) -> int | None:
    """Q·Kᵀ and weights·V (plus the fused input projection of Attention/QAttention)."""
    query = inputs[0]
    if query is None or len(query) != 3:
        return None
    batch, length, width = query
    if op in ("Attention", "QAttention"):
        weights = inputs[1] if len(inputs) > 1 else None
        if weights is None:
            return None
        hidden = weights[1] // 3
        return batch * length * width * weights[1] + 2 * batch * length * length * hidden
    key = inputs[1] if len(inputs) > 1 and inputs[1] is not None and len(inputs[1]) == 3 else query
    return 2 * batch * length * key[1] * width
