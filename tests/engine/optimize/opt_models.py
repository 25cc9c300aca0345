"""Tiny models for the optimization tests, built the way real exports break naive quantization.

Import `private_cache` into a test module: it is autouse and points the pass
cache at tmp_path, so no test ever touches the user's cache.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.optimize.passes.cache import CACHE_ENV


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    folder = tmp_path_factory.mktemp("pass-cache")
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _save(graph, path: Path, opset: int) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset >= 13 else 7
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))
    return path


def mlp_onnx(path: Path, *, opset: int = 17, constant_weights: bool = False, outlier: float | None = None,
             bias: bool = True) -> Path:
    """x (batch×16) → MatMul 16×32 → Relu → MatMul 32×4 (+ bias) → logits; seeded weights.

    With a bias, ONNX Runtime's pre-processing fuses fc2 and the Add into one Gemm.
    `constant_weights` keeps the weights in Constant nodes, as some exporters do;
    `outlier` puts one huge value in the first weight, so per-tensor INT8 crushes the rest of it.
    """
    rng = np.random.default_rng(7)
    w1 = rng.standard_normal((16, 32)).astype(np.float32) / 4
    if outlier is not None:
        w1[0, 0] = outlier
    w2 = rng.standard_normal((32, 4)).astype(np.float32) / 4
    b2 = rng.standard_normal(4).astype(np.float32)
    tensors = {"w1": w1, "w2": w2, "b2": b2} if bias else {"w1": w1, "w2": w2}
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["o" if bias else "logits"], name="fc2"),
    ] + ([helper.make_node("Add", ["o", "b2"], ["logits"], name="bias")] if bias else [])
    initializers = []
    if constant_weights:
        constants = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name))
                     for name, array in tensors.items()]
        nodes = constants + nodes
    else:
        initializers = [numpy_helper.from_array(array, name) for name, array in tensors.items()]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])], initializers)
    return _save(graph, path, opset)


def conv_onnx(path: Path, *, opset: int = 11, height="height", width="width", pad: int = 1) -> Path:
    """image (batch×3×H×W) → Conv 3→8 (3×3) → Relu → GlobalAveragePool → Flatten → Gemm 8→4."""
    rng = np.random.default_rng(11)
    initializers = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) / 3, "conv_w"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32) / 10, "conv_b"),
        numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["c"], name="conv", pads=[pad] * 4),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "conv",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, height, width])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])], initializers)
    return _save(graph, path, opset)


def conflicting_dims_onnx(path: Path) -> Path:
    """Two inputs whose batch dims have different names: symbolic shape inference gives up, ONNX Runtime does not."""
    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.standard_normal((8, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "y"], ["s"], name="add"),
         helper.make_node("MatMul", ["s", "w"], ["out"], name="fc")],
        "conflicting",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3])], [weight],
    )
    return _save(graph, path, 17)


TORCH_FACTORIES = textwrap.dedent('''
    import math
    import torch
    from torch import nn


    class SmallCnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            )
            self.classifier = nn.Linear(32, 5)

        def forward(self, image):
            return self.classifier(self.features(image).mean(dim=(2, 3)))


    class Attention(nn.Module):
        def __init__(self, width=32, num_heads=4):
            super().__init__()
            self.num_heads = num_heads
            self.norm = nn.LayerNorm(width)
            self.qkv = nn.Linear(width, 3 * width)
            self.out = nn.Linear(width, width)
            self.mlp_in = nn.Linear(width, 64)
            self.mlp_out = nn.Linear(64, width)

        def forward(self, x):
            batch, sequence, width = x.shape
            head = width // self.num_heads
            q, k, v = self.qkv(self.norm(x)).reshape(batch, sequence, 3, self.num_heads, head).permute(2, 0, 3, 1, 4)
            attended = ((q @ k.transpose(-2, -1)) / math.sqrt(head)).softmax(-1) @ v
            x = x + self.out(attended.transpose(1, 2).reshape(batch, sequence, width))
            return x + self.mlp_out(torch.relu(self.mlp_in(x)))


    class SmallEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(8, 32)
            self.block = Attention()
            self.classifier = nn.Linear(32, 3)

        def forward(self, tokens):
            return self.classifier(self.block(self.embed(tokens)).mean(dim=1))


    def small_cnn():
        torch.manual_seed(0)
        return SmallCnn().eval()


    def small_encoder():
        torch.manual_seed(0)
        return SmallEncoder().eval()
''')


def torch_factories(folder: Path) -> Path:
    """A factory file with `small_cnn` (image 1×3×16×16) and `small_encoder` (tokens 1×6×8, 4 heads)."""
    path = folder / "factories.py"
    path.write_text(TORCH_FACTORIES)
    return path


def encoder_onnx(path: Path, *, layers: int = 5, width: int = 16, sequence: int = 8) -> Path:
    """A BERT-like encoder (x: batch×sequence×width → hidden), big enough for every branch of auto's sensitivity.

    Per layer: q, k, v, output and two feed-forward MatMuls with weights, plus the two activation×activation
    attention MatMuls (8 MatMuls; 5 layers give 40, 30 with weights: both above the exclude-one limit).
    The attention scale is a rank-0 initializer (a scalar weight, as torch exports it); the output projections
    share one weight initializer (tied layers, as in ALBERT); the last layer holds its weights in Constant nodes.
    """
    rng = np.random.default_rng(5)
    initializers, nodes = [], []

    def weight(name: str, shape, *, constant: bool = False) -> str:
        array = (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
        if constant:
            nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name)))
        else:
            initializers.append(numpy_helper.from_array(array, name))
        return name

    initializers.append(numpy_helper.from_array(np.array(1 / np.sqrt(width), dtype=np.float32), "scale"))
    initializers.append(numpy_helper.from_array(np.ones(width, np.float32), "ln_gamma"))
    initializers.append(numpy_helper.from_array(np.zeros(width, np.float32), "ln_beta"))
    shared_wo = weight("wo", (width, width))
    x = "x"
    for layer in range(layers):
        constant = layer == layers - 1
        p = f"l{layer}_"
        wq, wk, wv = (weight(p + name, (width, width), constant=constant) for name in ("wq", "wk", "wv"))
        wo = weight(p + "wo", (width, width), constant=True) if constant else shared_wo
        w1 = weight(p + "w1", (width, 2 * width), constant=constant)
        w2 = weight(p + "w2", (2 * width, width), constant=constant)
        nodes += [
            helper.make_node("MatMul", [x, wq], [p + "q"], name=p + "q"),
            helper.make_node("MatMul", [x, wk], [p + "k"], name=p + "k"),
            helper.make_node("MatMul", [x, wv], [p + "v"], name=p + "v"),
            helper.make_node("Transpose", [p + "k"], [p + "kt"], name=p + "kt", perm=[0, 2, 1]),
            helper.make_node("MatMul", [p + "q", p + "kt"], [p + "scores"], name=p + "scores"),
            helper.make_node("Mul", [p + "scores", "scale"], [p + "scaled"], name=p + "scaled"),
            helper.make_node("Softmax", [p + "scaled"], [p + "probs"], name=p + "softmax", axis=-1),
            helper.make_node("MatMul", [p + "probs", p + "v"], [p + "ctx"], name=p + "ctx"),
            helper.make_node("MatMul", [p + "ctx", wo], [p + "attn"], name=p + "o"),
            helper.make_node("Add", [x, p + "attn"], [p + "res1"], name=p + "res1"),
            helper.make_node("LayerNormalization", [p + "res1", "ln_gamma", "ln_beta"], [p + "n1"], name=p + "ln1"),
            helper.make_node("MatMul", [p + "n1", w1], [p + "ff"], name=p + "ff1"),
            helper.make_node("Relu", [p + "ff"], [p + "ffr"], name=p + "relu"),
            helper.make_node("MatMul", [p + "ffr", w2], [p + "ff2"], name=p + "ff2"),
            helper.make_node("Add", [p + "n1", p + "ff2"], [p + "res2"], name=p + "res2"),
            helper.make_node("LayerNormalization", [p + "res2", "ln_gamma", "ln_beta"], [p + "out"], name=p + "ln2"),
        ]
        x = p + "out"
    nodes.append(helper.make_node("Identity", [x], ["hidden"], name="hidden"))
    graph = helper.make_graph(
        nodes, "encoder", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", sequence, width])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", sequence, width])], initializers)
    return _save(graph, path, 17)
