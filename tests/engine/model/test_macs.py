"""MAC counts at the bound shapes: attention's activation products, heavy ops, and what is left uncounted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from engine.model.macs import count_macs, node_macs

WIDTH, HEADS, MAX_LENGTH, VOCAB = 8, 2, 64, 50


def _ints(name: str, values) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, np.int64)))


def encoder_onnx(path: Path) -> Path:
    """One BERT-style self-attention block on input_ids (batch × sequence), as exporters write it.

    Position ids are a slice of a stored table whose end is computed from `Shape`, which ONNX's own shape inference
    leaves unresolved; at batch 1 their sum with the word vectors then has an unknown batch dim (1 broadcast
    against unknown), and so has every layer after it.
    """
    rng = np.random.default_rng(0)
    head = WIDTH // HEADS
    weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name) for name, shape in
               [("words", (VOCAB, WIDTH)), ("positions", (MAX_LENGTH, WIDTH)), ("wq", (WIDTH, WIDTH)),
                ("wk", (WIDTH, WIDTH)), ("wv", (WIDTH, WIDTH)), ("wo", (WIDTH, WIDTH))]]
    nodes = [
        _ints("position_table", [list(range(MAX_LENGTH))]),
        helper.make_node("Shape", ["input_ids"], ["ids_shape"]),
        _ints("one", 1), _ints("zero", 0), _ints("zero_1d", [0]), _ints("one_1d", [1]),
        helper.make_node("Gather", ["ids_shape", "one"], ["length"], axis=0),
        helper.make_node("Unsqueeze", ["length", "zero_1d"], ["length_1d"]),
        helper.make_node("Slice", ["position_table", "zero_1d", "length_1d", "one_1d", "one_1d"], ["position_ids"]),
        helper.make_node("Gather", ["words", "input_ids"], ["word_vectors"]),
        helper.make_node("Gather", ["positions", "position_ids"], ["position_vectors"]),
        helper.make_node("Add", ["word_vectors", "position_vectors"], ["x"]),
        helper.make_node("Gather", ["ids_shape", "zero"], ["batch"], axis=0),
        helper.make_node("Unsqueeze", ["batch", "zero_1d"], ["batch_1d"]),
        _ints("heads_and_size", [HEADS, head]), _ints("hidden", [WIDTH]),
        helper.make_node("Concat", ["batch_1d", "length_1d", "heads_and_size"], ["split_shape"], axis=0),
        helper.make_node("Concat", ["batch_1d", "length_1d", "hidden"], ["merged_shape"], axis=0),
    ]
    for name in ("q", "k", "v"):
        nodes += [helper.make_node("MatMul", ["x", f"w{name}"], [f"{name}_flat"], name=f"{name}_projection"),
                  helper.make_node("Reshape", [f"{name}_flat", "split_shape"], [f"{name}_split"]),
                  helper.make_node("Transpose", [f"{name}_split"], [f"{name}_heads"],
                                   perm=[0, 2, 3, 1] if name == "k" else [0, 2, 1, 3])]
    nodes += [
        helper.make_node("MatMul", ["q_heads", "k_heads"], ["scores"], name="scores"),
        helper.make_node("Softmax", ["scores"], ["weights"], axis=-1),
        helper.make_node("MatMul", ["weights", "v_heads"], ["context_heads"], name="context"),
        helper.make_node("Transpose", ["context_heads"], ["context_split"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["context_split", "merged_shape"], ["context"]),
        helper.make_node("MatMul", ["context", "wo"], ["hidden_states"], name="output_projection"),
    ]
    graph = helper.make_graph(
        nodes, "encoder", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("hidden_states", TensorProto.FLOAT, ["batch", "sequence", WIDTH])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def expected_encoder_macs(batch: int, length: int) -> dict[str, int]:
    projection = batch * length * WIDTH * WIDTH
    attention = batch * HEADS * length * length * (WIDTH // HEADS)
    return {"q_projection": projection, "k_projection": projection, "v_projection": projection,
            "scores": attention, "context": attention, "output_projection": projection}


def test_attention_matmuls_are_counted_at_the_bound_shapes(tmp_path):
    # setup
    model = encoder_onnx(tmp_path / "encoder.onnx")

    # execute
    short, long = count_macs(model, {"input_ids": (1, 16)}), count_macs(model, {"input_ids": (2, 40)})

    # assert
    assert {layer.name: layer.macs for layer in short.layers} == expected_encoder_macs(1, 16)
    assert {layer.name: layer.macs for layer in long.layers} == expected_encoder_macs(2, 40)
    assert short.unknown == 0 and short.unknown_by_op() == {}


def test_counted_ops_inside_subgraphs_are_listed_as_not_counted_by_op_type(tmp_path):
    # setup: a MatMul in each branch of an If, whose branch depends on the data
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    branches = [helper.make_graph([helper.make_node("MatMul", ["x", "w"], [f"y_{name}"], name=f"mm_{name}")], name, [],
                                  [helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, [2, 4])])
                for name in ("then", "else")]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="outer"),
         helper.make_node("If", ["flag"], ["y"], name="choice", then_branch=branches[0], else_branch=branches[1])],
        "conditional",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, [2, 4])], [weight])
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)

    # execute
    report = count_macs(path, {"x": (2, 4), "flag": ()})

    # assert
    assert report.total == 2 * 4 * 4
    assert report.unknown == 2 and report.unknown_by_op() == {"MatMul": 2}
    assert report.to_dict()["unknown_by_op"] == {"MatMul": 2}


def _macs(op_type: str, shapes: dict[str, tuple[int, ...]], inputs: list[str], **attributes) -> int | None:
    return node_macs(helper.make_node(op_type, inputs, ["out"], **attributes), shapes)


def test_grouped_depthwise_and_transposed_convolutions():
    # depthwise 3x3 over 32 channels, 16x16 output: one 3x3 window per output element
    assert _macs("Conv", {"x": (1, 32, 16, 16), "w": (32, 1, 3, 3), "out": (1, 32, 16, 16)}, ["x", "w"],
                 group=32) == 32 * 16 * 16 * 9
    # two groups of 8 -> 8 channels: each output sees 8 input channels
    assert _macs("Conv", {"x": (1, 16, 8, 8), "w": (16, 8, 1, 1), "out": (1, 16, 8, 8)}, ["x", "w"],
                 group=2) == 16 * 8 * 8 * 8
    # each input element feeds C_out × kernel outputs
    assert _macs("ConvTranspose", {"x": (1, 4, 5, 5), "w": (4, 6, 2, 2), "out": (1, 6, 10, 10)},
                 ["x", "w"]) == 4 * 5 * 5 * 6 * 2 * 2


def test_gemm_batched_matmul_einsum_and_recurrent_ops():
    assert _macs("Gemm", {"a": (7, 3), "b": (7, 5), "out": (3, 5)}, ["a", "b"], transA=1) == 3 * 5 * 7
    # scores × V broadcast over a batch of 1 against 4 heads
    assert _macs("MatMul", {"a": (2, 4, 10, 10), "b": (1, 4, 10, 6), "out": (2, 4, 10, 6)}, ["a", "b"]) == \
        2 * 4 * 10 * 6 * 10
    assert _macs("Einsum", {"q": (2, 3, 10, 4), "k": (2, 3, 12, 4)}, ["q", "k"], equation="bhqd,bhkd->bhqk") == \
        2 * 3 * 10 * 12 * 4
    assert _macs("Einsum", {"a": (5, 2, 3), "b": (3, 4)}, ["a", "b"], equation="...ij,jk->...ik") == 5 * 2 * 3 * 4
    # LSTM: per step and sequence, x·Wᵀ and h·Rᵀ for 4 gates in 2 directions
    lstm = {"x": (24, 1, 512), "w": (2, 4 * 256, 512), "r": (2, 4 * 256, 256)}
    assert _macs("LSTM", lstm, ["x", "w", "r"], hidden_size=256) == 24 * (2 * 1024 * 512 + 2 * 1024 * 256)
    gru = {"x": (3, 10, 8), "w": (1, 3 * 16, 8), "r": (1, 3 * 16, 16)}
    assert _macs("GRU", gru, ["x", "w", "r"], hidden_size=16, layout=1) == 10 * 3 * (3 * 16 * 8 + 3 * 16 * 16)


def test_attention_ops_count_both_activation_products():
    # ONNX Attention on (batch, heads, length, head size)
    shapes = {"q": (2, 4, 10, 8), "k": (2, 4, 12, 8), "v": (2, 4, 12, 8)}
    assert _macs("Attention", shapes, ["q", "k", "v"]) == 2 * 4 * 10 * 12 * (8 + 8)
    # contrib MultiHeadAttention on (batch, length, hidden)
    shapes = {"q": (2, 10, 32), "k": (2, 12, 32), "v": (2, 12, 32)}
    assert _macs("MultiHeadAttention", shapes, ["q", "k", "v"]) == 2 * 10 * 12 * (32 + 32)
    # contrib Attention: the packed QKV projection plus both products
    assert _macs("Attention", {"x": (2, 10, 32), "w": (32, 96)}, ["x", "w"]) == 2 * 10 * 32 * 96 + 2 * 2 * 10 * 10 * 32


def test_unknown_shapes_give_unknown_macs_not_zero():
    assert _macs("MatMul", {"b": (4, 4)}, ["a", "b"]) is None
    assert _macs("LSTM", {"w": (1, 4, 2), "r": (1, 4, 1)}, ["x", "w", "r"]) is None


def test_shapes_no_inference_resolves_are_measured_by_one_run_on_zeros(tmp_path, monkeypatch):
    # setup: inference that stops part way, as ONNX's and ONNX Runtime's both do after a DynamicQuantizeLSTM
    from engine.model import macs

    path = encoder_onnx(tmp_path / "encoder.onnx")
    inferred = macs._inferred_shapes
    monkeypatch.setattr(macs, "_inferred_shapes", lambda model: {
        name: shape for name, shape in inferred(model).items() if name in ("input_ids", "words", "positions")})

    # execute
    report = count_macs(path, {"input_ids": (2, 5)})

    # assert: every layer counted, at the shapes of the run
    assert report.unknown == 0 and report.total == sum(expected_encoder_macs(2, 5).values())
