"""Awkward ONNX models the wild corpus lacks, built in tmp_path the way real exporters write them.

Each builder writes one small model and returns its path; the weights are seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import save_onnx

RNG_SEED = 0


def _save(graph, path: Path, opset: int, *, external: bool = False) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset <= 12 else 8
    onnx.checker.check_model(model)
    return save_onnx(model, path, external=external)


def _weights(name: str, shape: tuple[int, ...], rng: np.random.Generator):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)


def _image_input(name: str, dims: list) -> onnx.ValueInfoProto:
    """An image input whose dims may be -1 (dim_value ≤ 0 means dynamic) or None (a dim with nothing set)."""
    value = helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
    shape = value.type.tensor_type.shape
    for size in dims:
        dim = shape.dim.add()
        if size is not None:
            dim.dim_value = size
    return value


def paddle_style_classifier(path: Path) -> Path:
    """Paddle2ONNX's input x: -1×3×?×? (dim_value -1 and two unnamed dims), opset 11: Conv, pool, Gemm."""
    rng = np.random.default_rng(RNG_SEED)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["features"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["features"], ["activated"]),
            helper.make_node("GlobalAveragePool", ["activated"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
        ],
        "paddle_style",
        [_image_input("x", [-1, 3, None, None])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [-1, 4])],
        [_weights("conv_w", (8, 3, 3, 3), rng), _weights("conv_b", (8,), rng),
         _weights("fc_w", (4, 8), rng), _weights("fc_b", (4,), rng)],
    )
    return _save(graph, path, 11)


def opset12_export(path: Path) -> Path:
    """Ops written the pre-13 way: Unsqueeze/Squeeze/ReduceSum axes as attributes, Clip bounds as inputs, Softmax."""
    rng = np.random.default_rng(RNG_SEED)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["projected"]),
            helper.make_node("Clip", ["projected", "low", "high"], ["clipped"]),
            helper.make_node("Unsqueeze", ["clipped"], ["expanded"], axes=[1]),
            helper.make_node("ReduceSum", ["expanded"], ["summed"], axes=[1], keepdims=1),
            helper.make_node("Squeeze", ["summed"], ["squeezed"], axes=[1]),
            helper.make_node("Softmax", ["squeezed"], ["probabilities"], axis=1),
        ],
        "opset12",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        [_weights("w", (32, 10), rng), numpy_helper.from_array(np.array(-6.0, np.float32), "low"),
         numpy_helper.from_array(np.array(6.0, np.float32), "high")],
    )
    return _save(graph, path, 12)


def branching_model(path: Path) -> Path:
    """An If node whose branches hold their own weights: y = x @ W_then if sum(x) else x @ W_else."""
    rng = np.random.default_rng(RNG_SEED)

    def branch(name: str) -> onnx.GraphProto:
        return helper.make_graph(
            [helper.make_node("MatMul", ["x", f"w_{name}"], [f"y_{name}"])], name, [],
            [helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, ["batch", 3])],
            [_weights(f"w_{name}", (4, 3), rng)],
        )

    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
            helper.make_node("Cast", ["total"], ["condition"], to=TensorProto.BOOL),
            helper.make_node("If", ["condition"], ["y"], then_branch=branch("then"), else_branch=branch("else")),
        ],
        "branching",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    return _save(graph, path, 13)


BRANCH_PARAMETERS = 2 * 4 * 3


def external_data_cnn(path: Path) -> Path:
    """A Conv + Gemm image model whose weights live in a side file (`<name>.data`)."""
    rng = np.random.default_rng(RNG_SEED)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["features"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["features"], ["activated"]),
            helper.make_node("GlobalAveragePool", ["activated"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1),
        ],
        "external_data",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 5])],
        [_weights("conv_w", (8, 3, 3, 3), rng), _weights("conv_b", (8,), rng),
         _weights("fc_w", (5, 8), rng), _weights("fc_b", (5,), rng)],
    )
    return _save(graph, path, 17, external=True)


EXTERNAL_PARAMETERS = 8 * 3 * 3 * 3 + 8 + 5 * 8 + 5


def mixed_dtype_outputs(path: Path) -> Path:
    """Two outputs of different dtypes, as classifiers export them: float scores and int64 labels."""
    rng = np.random.default_rng(RNG_SEED)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["hidden"]),
            helper.make_node("Add", ["hidden", "b"], ["scores"]),
            helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0),
        ],
        "mixed_outputs",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 10]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])],
        [_weights("w", (64, 10), rng), _weights("b", (10,), rng)],
    )
    return _save(graph, path, 17)


def scalar_rate_model(path: Path) -> Path:
    """A speech-style model with a rank-0 int64 `sr` input: y = x * sr / 16000 (x: batch×16 float)."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["sr"], ["rate"], to=TensorProto.FLOAT),
            helper.make_node("Div", ["rate", "reference_rate"], ["scale"]),
            helper.make_node("Mul", ["x", "scale"], ["y"]),
        ],
        "scalar_rate",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])],
        [numpy_helper.from_array(np.array(16000.0, np.float32), "reference_rate")],
    )
    return _save(graph, path, 17)


def constant_weight_conv(path: Path) -> Path:
    """Conv weights and bias held in Constant nodes, not initializers (as some exporters write detectors)."""
    rng = np.random.default_rng(RNG_SEED)
    weight = (rng.standard_normal((8, 3, 3, 3)) * 0.1).astype(np.float32)
    bias = (rng.standard_normal(8) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["conv_w"], value=numpy_helper.from_array(weight)),
            helper.make_node("Constant", [], ["conv_b"], value=numpy_helper.from_array(bias)),
            helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["features"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["features"], ["activated"]),
        ],
        "constant_weights",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("activated", TensorProto.FLOAT, [1, 8, 32, 32])],
    )
    return _save(graph, path, 17)


CONSTANT_PARAMETERS = 8 * 3 * 3 * 3 + 8
CONSTANT_MACS = 8 * 32 * 32 * 3 * 3 * 3


def tiny_bert(path: Path, *, vocab: int = 100, hidden: int = 32, heads: int = 2, ffn: int = 64) -> Path:
    """One encoder layer as torch.onnx writes it: heads split by Reshapes whose shapes are computed from Shape,
    Gather, Unsqueeze and Constant nodes; attention as two activation×activation MatMuls (Q·Kᵀ and weights·V);
    LayerNorm and a ReLU FFN. input_ids: batch×sequence."""
    rng = np.random.default_rng(RNG_SEED)
    head_width = hidden // heads
    ints = lambda name, values: numpy_helper.from_array(np.array(values, np.int64), name)  # noqa: E731
    weights = [
        _weights("embedding", (vocab, hidden), rng),
        *(_weights(f"w_{name}", (hidden, hidden), rng) for name in "qkvo"),
        *(_weights(f"b_{name}", (hidden,), rng) for name in "qkvo"),
        _weights("w_up", (hidden, ffn), rng), _weights("w_down", (ffn, hidden), rng),
        numpy_helper.from_array(np.ones(hidden, np.float32), "ln_scale"),
        numpy_helper.from_array(np.zeros(hidden, np.float32), "ln_bias"),
        numpy_helper.from_array(np.array(np.sqrt(head_width), np.float32), "scale"),
    ]
    constant = lambda name, values: helper.make_node("Constant", [], [name], value=ints(name, values))  # noqa: E731
    nodes = [
        constant("index0", 0), constant("index1", 1), constant("axes0", [0]),
        constant("head_dims", [heads, head_width]), constant("merge_tail", [-1]),
        helper.make_node("Gather", ["embedding", "input_ids"], ["embedded"]),
        helper.make_node("Shape", ["embedded"], ["hidden_shape"]),
        helper.make_node("Gather", ["hidden_shape", "index0"], ["batch_scalar"], axis=0),
        helper.make_node("Gather", ["hidden_shape", "index1"], ["sequence_scalar"], axis=0),
        helper.make_node("Unsqueeze", ["batch_scalar", "axes0"], ["batch_size"]),
        helper.make_node("Unsqueeze", ["sequence_scalar", "axes0"], ["sequence_length"]),
        helper.make_node("Concat", ["batch_size", "sequence_length", "head_dims"], ["split_shape"], axis=0),
        helper.make_node("Concat", ["batch_size", "sequence_length", "merge_tail"], ["merge_shape"], axis=0),
    ]
    for name in "qkv":
        perm = [0, 2, 3, 1] if name == "k" else [0, 2, 1, 3]
        nodes += [
            helper.make_node("MatMul", ["embedded", f"w_{name}"], [f"{name}_projected"]),
            helper.make_node("Add", [f"{name}_projected", f"b_{name}"], [f"{name}_biased"]),
            helper.make_node("Reshape", [f"{name}_biased", "split_shape"], [f"{name}_split"]),
            helper.make_node("Transpose", [f"{name}_split"], [f"{name}_heads"], perm=perm),
        ]
    nodes += [
        helper.make_node("MatMul", ["q_heads", "k_heads"], ["scores"]),
        helper.make_node("Div", ["scores", "scale"], ["scaled"]),
        helper.make_node("Softmax", ["scaled"], ["attention"], axis=-1),
        helper.make_node("MatMul", ["attention", "v_heads"], ["context_heads"]),
        helper.make_node("Transpose", ["context_heads"], ["context_split"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["context_split", "merge_shape"], ["context"]),
        helper.make_node("MatMul", ["context", "w_o"], ["o_projected"]),
        helper.make_node("Add", ["o_projected", "b_o"], ["attended"]),
        helper.make_node("Add", ["attended", "embedded"], ["residual"]),
        helper.make_node("LayerNormalization", ["residual", "ln_scale", "ln_bias"], ["normed"], axis=-1),
        helper.make_node("MatMul", ["normed", "w_up"], ["up"]),
        helper.make_node("Relu", ["up"], ["up_activated"]),
        helper.make_node("MatMul", ["up_activated", "w_down"], ["last_hidden_state"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_bert",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])],
        weights,
    )
    return _save(graph, path, 17)


def tiny_bert_macs(batch: int, sequence: int, *, hidden: int = 32, heads: int = 2, ffn: int = 64) -> int:
    """Q, K, V and output projections, Q·Kᵀ and weights·V over all heads, and the two FFN MatMuls."""
    tokens = batch * sequence
    projections = 4 * tokens * hidden * hidden
    attention = 2 * batch * heads * sequence * sequence * (hidden // heads)
    feed_forward = 2 * tokens * hidden * ffn
    return projections + attention + feed_forward
