"""Which nodes lose the most accuracy when quantized: the ranking auto mode keeps in FP32 first.

Two measures:
  * exclude-one: quantize everything but one node and see how much of the
    output error goes away (direct, one quantization per node);
  * SQNR: signal-to-quantization-noise of each node's weight and, for static
    QDQ, of its input activations, from ONNX Runtime's `qdq_loss_debug`
    (one extra run, for models with too many nodes to try one by one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.progress import Progress
from engine.errors import OptimizationError

EXCLUDABLE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
DYNAMIC_OPS = frozenset({"Conv", "MatMul"})  # quantize_dynamic leaves Gemm in FP32
EXCLUDE_ONE_LIMIT = 24  # above this many nodes, "auto" sensitivity uses SQNR


@dataclass(frozen=True)
class NodeSensitivity:
    node: str
    op_type: str
    score: float
    metric: str  # what `score` means; entries are ordered most sensitive first

    def to_dict(self) -> dict:
        return {"node": self.node, "op_type": self.op_type, "score": None if math.isinf(self.score) else self.score,
                "metric": self.metric}


def excludable_nodes(model, *, dynamic: bool) -> list[tuple[str, str]]:
    """(name, op type) of the nodes whose quantization can be switched off; dynamic INT8 only touches weights."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    initializers |= {node.output[0] for node in model.graph.node if node.op_type == "Constant" and node.output}
    dequantized = {out for node in model.graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    nodes = []
    for node in model.graph.node:
        if node.op_type not in (DYNAMIC_OPS if dynamic else EXCLUDABLE_OPS) or not node.name:
            continue
        if dynamic and not any(name in initializers or name in dequantized for name in node.input[1:2]):
            continue
        nodes.append((node.name, node.op_type))
    return nodes


def exclude_one(nodes: Sequence[tuple[str, str]], baseline_error: float,
                error_without: Callable[[str], float], progress: Progress) -> list[NodeSensitivity]:
    """Score = relative output error removed by keeping that one node in FP32."""
    scores = []
    for index, (name, op_type) in enumerate(nodes):
        scores.append(NodeSensitivity(name, op_type, baseline_error - error_without(name), "relative error removed"))
        progress((index + 1) / max(len(nodes), 1), f"sensitivity: node {index + 1}/{len(nodes)}")
    return sorted(scores, key=lambda s: -s.score)


def weight_sqnr(weight: np.ndarray, per_channel: bool, axis: int = 0) -> float:
    """SQNR (dB) of symmetric INT8 quantization of one weight tensor, as the quantizer would do it."""
    w = weight.astype(np.float64)
    if per_channel and w.ndim >= 2:
        reduce = tuple(i for i in range(w.ndim) if i != axis)
        scale = np.max(np.abs(w), axis=reduce, keepdims=True) / 127.0
    else:
        scale = np.max(np.abs(w)) / 127.0
    scale = np.where(scale == 0, 1.0, scale)
    noise = np.linalg.norm(w - np.clip(np.round(w / scale), -127, 127) * scale)
    signal = np.linalg.norm(w)
    return math.inf if noise == 0 else 20 * math.log10(max(signal, 1e-30) / noise)


def weight_sqnr_ranking(model, nodes: Sequence[tuple[str, str]], per_channel: bool) -> list[NodeSensitivity]:
    """For dynamic INT8, where only weights are quantized: lowest weight SQNR first."""
    weights = constant_tensors(model)
    by_name = {node.name: node for node in model.graph.node}
    scores = []
    for name, op_type in nodes:
        node = by_name[name]
        array = weights.get(node.input[1]) if len(node.input) > 1 else None
        if array is None:
            continue
        axis = 1 if op_type == "MatMul" else 0  # MatMul weights are (in, out): channels on axis 1
        sqnr = weight_sqnr(array, per_channel, axis)
        scores.append(NodeSensitivity(name, op_type, sqnr, "weight SQNR dB (low = sensitive)"))
    return sorted(scores, key=lambda s: s.score)


def qdq_sqnr_ranking(float_model: Path, qdq_model: Path, feeds: Sequence[dict], nodes: Sequence[tuple[str, str]],
                     work_dir: Path) -> list[NodeSensitivity]:
    """Static QDQ: each node's worst SQNR over its weight and its quantized inputs, from qdq_loss_debug."""
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        compute_weight_error,
        create_activation_matching,
        create_weight_matching,
        modify_model_output_intermediate_tensors,
    )

    augmented_float, augmented_qdq = work_dir / "sqnr_float.onnx", work_dir / "sqnr_qdq.onnx"
    modify_model_output_intermediate_tensors(str(float_model), str(augmented_float))
    modify_model_output_intermediate_tensors(str(qdq_model), str(augmented_qdq))
    float_activations = collect_activations(str(augmented_float), _FeedReader(feeds))
    qdq_activations = collect_activations(str(augmented_qdq), _FeedReader(feeds))
    activation_errors = compute_activation_error(create_activation_matching(qdq_activations, float_activations),
                                                 _sqnr)
    weight_errors = compute_weight_error(create_weight_matching(str(float_model), str(qdq_model)), _sqnr)
    by_name = {node.name: node for node in onnx.load(str(float_model), load_external_data=False).graph.node}
    scores = []
    for name, op_type in nodes:
        node = by_name.get(name)
        if node is None:
            continue
        values = [weight_errors[i] for i in node.input if i in weight_errors]
        values += [activation_errors[i]["qdq_err"] for i in node.input if i in activation_errors]
        if values:
            scores.append(NodeSensitivity(name, op_type, float(min(values)), "SQNR dB (low = sensitive)"))
    return sorted(scores, key=lambda s: s.score)


def constant_tensors(model) -> dict[str, np.ndarray]:
    """Every constant tensor of the main graph by name: initializers and the outputs of `Constant` nodes."""
    from onnx import helper, numpy_helper

    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensors[node.output[0]] = numpy_helper.to_array(helper.get_attribute_value(node.attribute[0]))
    return tensors


def _sqnr(reference, quantized) -> float:
    """qdq_loss_debug's SQNR for any mix of arrays, lists of arrays and numpy scalars (its own needs lists of
    arrays of rank ≥ 1: a rank-0 weight, as exporters write attention scales, crashed it)."""
    left, right = _flat(reference), _flat(quantized)
    if left.size != right.size:
        raise OptimizationError(f"SQNR ranking: the float and quantized tensors differ in size ({left.size} and "
                                f"{right.size}); choose --quantization-auto-sensitivity exclude_one")
    epsilon = np.finfo(np.float64).eps
    signal, noise = max(float(np.linalg.norm(left)), epsilon), max(float(np.linalg.norm(left - right)), epsilon)
    return 20 * math.log10(signal / noise)


def _flat(values) -> np.ndarray:
    parts = values if isinstance(values, (list, tuple)) else [values]
    return np.concatenate([np.asarray(part, dtype=np.float64).ravel() for part in parts]) if parts else np.zeros(0)


class _FeedReader:
    """The minimal CalibrationDataReader protocol collect_activations iterates over."""

    def __init__(self, feeds: Sequence[dict]):
        self._feeds = list(feeds)

    def __iter__(self):
        return iter(self._feeds)

    def get_next(self):
        return self._feeds.pop(0) if self._feeds else None
