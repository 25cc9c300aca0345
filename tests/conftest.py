"""Tiny models built in tmp_path, shared by the engine and studio tests."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent
SAMPLE_TRANSFORMER = REPO / "resources" / "models" / "sample_transformer.onnx"
SAMPLE_CNN = REPO / "resources" / "models" / "sample_cnn.onnx"


def linear_onnx(path: Path, *, batch_dim="batch", features: int = 4, external: bool = False) -> Path:
    """y = x @ W + b with x: batch_dim×features float32; W and b seeded."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((features, 3)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch_dim, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch_dim, 3])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save_onnx(model, path, external=external)


def save_onnx(model, path: Path, *, external: bool = False) -> Path:
    """Saves `model`; with `external`, every weight goes to `<name>.data` beside it."""
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def embedding_onnx(path: Path, vocab: int = 50) -> Path:
    """mean(table[input_ids]) with int64 input_ids and attention_mask (batch×sequence)."""
    table = numpy_helper.from_array(np.arange(vocab * 2, dtype=np.float32).reshape(vocab, 2), "table")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["embedded"]),
            helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["embedded"], ["pooled"], axes=[1], keepdims=0),
            helper.make_node("ReduceSum", ["mask_f"], ["tokens"], keepdims=0),
        ],
        "embedding",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("tokens", TensorProto.FLOAT, []),
        ],
        [table],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save_model(model, str(path))
    return path


@pytest.fixture
def linear_model(tmp_path: Path) -> Path:
    return linear_onnx(tmp_path / "linear.onnx")


@pytest.fixture(autouse=True)
def private_database(tmp_path_factory, monkeypatch):
    """Runs, optimized models and pass caches of tests go to throwaway folders, never the user's."""
    path = tmp_path_factory.mktemp("db") / "studio.db"
    monkeypatch.setenv("AUTOGLM_STUDIO_DB", str(path))
    monkeypatch.setenv("AUTOGLM_STUDIO_DATA", str(path.parent / "data"))
    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(path.parent / "cache"))
    return path


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"test leaked threads: {leaked}"
