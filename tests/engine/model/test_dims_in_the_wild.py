"""Dims the way exporters write them (issue 13): -1 and '?' dims, odd batch names, metadata sizes, scalars, formulas."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from engine.errors import ShapeMismatchError
from engine.model.inputs import InputRequest, choose_dims, prepare_inputs
from engine.model.opening import load_model
from engine.model.tensors import TensorSpec

FORMULA = "(floor(floor(floor(height/2 - 1/2)/2)/2) + 1)*(floor(floor(floor(width/2 - 1/2)/2)/2) + 1)"


def identity_model(tmp_path, inputs, metadata=None, name="model.onnx"):
    """One Identity per input; `inputs` is [(name, elem_type, shape)] with shapes as onnx.helper takes them."""
    values = [helper.make_tensor_value_info(n, t, shape) for n, t, shape in inputs]
    outputs = [helper.make_tensor_value_info(f"{n}_out", t, shape) for n, t, shape in inputs]
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"]) for n, _, _ in inputs]
    model = helper.make_model(helper.make_graph(nodes, "g", values, outputs),
                              opset_imports=[helper.make_opsetid("", 17)])
    for key, value in (metadata or {}).items():
        helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, key: value})
    path = tmp_path / name
    onnx.save(model, path)
    return load_model(str(path))


def prepared(handle, request=InputRequest()):
    return prepare_inputs(handle.inputs, request, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds)


def test_a_minus_one_dim_is_open_and_takes_a_given_shape(tmp_path):
    # setup: Paddle's x: -1×3×?×?
    handle = identity_model(tmp_path, [("x", TensorProto.FLOAT, [-1, 3, "?", "?"])])
    # execute
    feed = prepared(handle, InputRequest(shapes={"x": (1, 3, 48, 192)})).feed
    # assert
    assert feed["x"].shape == (1, 3, 48, 192)


@pytest.mark.parametrize("open_dim", [-1, "?", None])
def test_two_unnamed_dims_are_independent(tmp_path, open_dim):
    handle = identity_model(tmp_path, [("x", TensorProto.FLOAT, [-1, 3, open_dim, open_dim])])
    feed = prepared(handle, InputRequest(shapes={"x": (2, 3, 48, 192)})).feed
    assert feed["x"].shape == (2, 3, 48, 192)


def test_unnamed_dims_can_be_set_one_by_one(tmp_path):
    handle = identity_model(tmp_path, [("x", TensorProto.FLOAT, [-1, 3, -1, -1])])
    feed = prepared(handle, InputRequest(dims={"x[3]": 100}, batch=2)).feed
    assert feed["x"].shape == (2, 3, 224, 100)


@pytest.mark.parametrize("leading", ["p2o.DynamicDimension.0", "DynamicDimension.0", "unk__214", "N", -1])
def test_a_leading_dynamic_dim_of_any_name_is_the_batch(tmp_path, leading):
    handle = identity_model(tmp_path, [("x", TensorProto.FLOAT, [leading, 3, 8, 8])])
    inputs = prepared(handle, InputRequest(batch=4))
    assert inputs.feed["x"].shape == (4, 3, 8, 8) and inputs.batch_size == 4
    choice = next(iter(inputs.dim_choices.values()))
    assert (choice.size, choice.origin, choice.reason) == (4, "given", "batch size")


def test_a_batch_conflict_names_no_command_line_flag(tmp_path):
    handle = identity_model(tmp_path, [("x", TensorProto.FLOAT, ["p2o.DynamicDimension.0", 3, 8, 8])])
    with pytest.raises(ShapeMismatchError) as raised:
        prepared(handle, InputRequest(dims={"p2o.DynamicDimension.0": 2}, batch=4))
    assert "the batch size" in str(raised.value) and "--" not in str(raised.value)


def test_no_dim_silently_becomes_one(tmp_path):
    # setup: an image with open sides, and features whose middle dim has no known role
    handle = identity_model(tmp_path, [("image", TensorProto.FLOAT, ["batch", 3, "?", "?"]),
                                       ("features", TensorProto.FLOAT, [-1, -1, 7])])
    # execute
    inputs = prepared(handle)
    # assert
    assert inputs.feed["image"].shape == (1, 3, 224, 224)
    assert inputs.feed["features"].shape == (1, 32, 7)
    choices = {dim: (c.size, c.origin, c.guessed) for dim, c in inputs.dim_choices.items()}
    assert choices == {"batch": (1, "default", False), "image[2]": (224, "default", False),
                       "image[3]": (224, "default", False), "features[0]": (1, "default", False),
                       "features[1]": (32, "default", True)}
    assert inputs.guessed_dims == ("features[1]",)
    assert "features[1]=32 (default: role unknown; guessed)" in inputs.dims_text()


def test_image_sides_come_from_ultralytics_metadata(tmp_path):
    handle = identity_model(tmp_path, [("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
                            metadata={"imgsz": "[320, 256]", "task": "detect"})
    inputs = prepared(handle)
    assert handle.metadata["imgsz"] == "[320, 256]"
    assert inputs.feed["images"].shape == (1, 3, 320, 256)
    assert inputs.dim_choices["height"].origin == "model metadata"
    assert inputs.dim_choices["width"].reason == "imgsz [320, 256]"


@pytest.mark.parametrize(("shape", "expected"), [([1, 1, 64, "image_width"], (1, 1, 64, 256)),
                                                 ([-1, 3, 48, -1], (1, 3, 48, 192))])
def test_a_text_line_recognizer_gets_a_width_from_its_height(tmp_path, shape, expected):
    handle = identity_model(tmp_path, [("x", TensorProto.FLOAT, shape)])
    assert prepared(handle).feed["x"].shape == expected


def test_choose_dims_says_what_a_run_would_use_without_building_tensors():
    specs = (TensorSpec("input_ids", "int64", ("batch_size", "sequence_length")),)
    choices = choose_dims(specs, InputRequest(dims={"sequence_length": 16}))
    assert {dim: (c.size, c.origin) for dim, c in choices.items()} == {
        "batch_size": (1, "default"), "sequence_length": (16, "given")}


def test_a_scalar_from_an_npz_stays_a_scalar(tmp_path):
    # setup: a stateful speech model's rank-0 sample rate
    handle = identity_model(tmp_path, [("audio", TensorProto.FLOAT, ["batch", 512]), ("sr", TensorProto.INT64, [])])
    path = tmp_path / "inputs.npz"
    np.savez(path, audio=np.zeros((1, 512), np.float32), sr=np.array(16000))
    # execute
    feed = prepared(handle, InputRequest(npz=path)).feed
    # assert
    assert feed["sr"].shape == () and int(feed["sr"]) == 16000


def test_a_synthetic_scalar_stays_a_scalar(tmp_path):
    handle = identity_model(tmp_path, [("sr", TensorProto.INT64, [])])
    feed = prepared(handle, InputRequest(batch=1)).feed
    assert isinstance(feed["sr"], np.ndarray) and feed["sr"].shape == ()


def test_symbolic_output_dims_have_a_brief_form():
    spec = TensorSpec("output0", "float32", ("batch", 22, FORMULA))
    assert spec.shape_text(brief=True) == "batch×22×expr₁"
    assert spec.formulas() == {"expr₁": FORMULA}
    assert spec.shape_text() == f"batch×22×{FORMULA}"  # the whole text stays available
    assert TensorSpec("x", "float32", ("unk__214", "p2o.DynamicDimension.0")).formulas() == {}
