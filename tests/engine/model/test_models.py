import hashlib
import os
from pathlib import Path

import pytest

from engine.errors import (
    CorruptModelError,
    InvalidModelError,
    ModelLoadError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from engine.model.handle import ModelFormat
from engine.model.opening import load_model
from tests.conftest import SAMPLE_CNN, SAMPLE_TRANSFORMER, embedding_onnx, linear_onnx


def test_sample_transformer_card():
    # execute
    handle = load_model(SAMPLE_TRANSFORMER)
    # assert
    assert handle.format is ModelFormat.ONNX
    assert [(s.name, s.dtype, s.shape) for s in handle.inputs] == [
        ("input_ids", "int64", ("batch", "sequence")),
        ("attention_mask", "int64", ("batch", "sequence")),
    ]
    assert handle.outputs[0].shape == ("batch", 2)
    assert handle.sha256 == hashlib.sha256(SAMPLE_TRANSFORMER.read_bytes()).hexdigest()
    assert handle.size_bytes == SAMPLE_TRANSFORMER.stat().st_size
    assert handle.parameter_count > 100_000
    assert handle.op_histogram["MatMul"] >= 8 and handle.op_histogram["Softmax"] == 2
    assert handle.index_bounds == {"input_ids": 1000}


def test_sample_cnn_has_dynamic_batch_only():
    handle = load_model(SAMPLE_CNN)
    assert handle.inputs[0].shape == ("batch", 3, 64, 64)
    assert handle.inputs[0].symbolic_dims == ("batch",)
    assert handle.op_histogram["Conv"] == 4


def test_external_data_is_hashed_and_counted(tmp_path):
    # setup
    path = linear_onnx(tmp_path / "ext.onnx", external=True)
    data = tmp_path / "ext.onnx.data"
    # execute
    handle = load_model(path)
    # assert
    assert handle.files == (path.resolve(), data.resolve())
    assert handle.size_bytes == path.stat().st_size + data.stat().st_size
    assert handle.sha256 == hashlib.sha256(path.read_bytes() + data.read_bytes()).hexdigest()
    assert handle.parameter_count == 4 * 3 + 3


def test_missing_external_data_is_named(tmp_path):
    path = linear_onnx(tmp_path / "ext.onnx", external=True)
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(ModelLoadError, match="external data file 'ext.onnx.data'.*missing"):
        load_model(path)


def test_truncated_external_data(tmp_path):
    path = linear_onnx(tmp_path / "ext.onnx", external=True)
    data = tmp_path / "ext.onnx.data"
    data.write_bytes(data.read_bytes()[:10])
    with pytest.raises(CorruptModelError, match="truncated"):
        load_model(path)


def test_external_data_may_not_escape_the_model_folder(tmp_path):
    import onnx

    path = linear_onnx(tmp_path / "ext.onnx", external=True)
    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../outside.data"
    onnx.save_model(model, str(path))
    with pytest.raises(InvalidModelError, match="outside the model folder"):
        load_model(path)


def test_random_bytes_named_onnx(tmp_path):
    path = tmp_path / "random.onnx"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CorruptModelError, match="not a readable ONNX file"):
        load_model(path)


def test_truncated_onnx(tmp_path):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(SAMPLE_CNN.read_bytes()[: SAMPLE_CNN.stat().st_size // 2])
    with pytest.raises((CorruptModelError, InvalidModelError)):
        load_model(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.touch()
    with pytest.raises(ModelLoadError, match="empty"):
        load_model(path)


def test_directory(tmp_path):
    with pytest.raises(UnsupportedModelError, match="is a directory"):
        load_model(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such file"):
        load_model(tmp_path / "nope.onnx")


def test_onnx_failing_the_checker(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x"], ["y"])],  # Add needs two inputs
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "bad.onnx"
    onnx.save_model(model, str(path))
    with pytest.raises(InvalidModelError, match="fails the ONNX checker"):
        load_model(path)


def test_unknown_format(tmp_path):
    path = tmp_path / "weights.xyz"
    path.write_bytes(b"hello")
    with pytest.raises(UnsupportedModelError, match="unknown model format"):
        load_model(path)


def test_index_bounds_come_from_the_embedding_table(tmp_path):
    handle = load_model(embedding_onnx(tmp_path / "emb.onnx", vocab=37))
    assert handle.index_bounds == {"input_ids": 37}
    assert handle.outputs[1].shape == ()


def test_handle_serializes(tmp_path):
    data = load_model(linear_onnx(tmp_path / "m.onnx")).to_dict()
    assert data["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}]
    assert data["op_histogram"] == {"Add": 1, "MatMul": 1}
    assert Path(data["path"]).name == "m.onnx"
