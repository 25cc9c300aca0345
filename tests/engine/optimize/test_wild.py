"""Models in the wild: old opsets, weights in Constant nodes, symbolic shape inference failures, dynamic dims."""

import numpy as np
import onnx
import onnxruntime as ort

from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.optimize.optimizer import optimize
from engine.optimize.recipe import Recipe
from tests.engine.optimize.opt_models import (  # noqa: F401
    conflicting_dims_onnx,
    conv_onnx,
    mlp_onnx,
    private_cache,
)


def opset(path) -> int:
    return next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx"))


def test_opset_11_model_is_upgraded_for_per_channel_static_int8(tmp_path):
    # setup
    source = load_model(conv_onnx(tmp_path / "old.onnx", opset=11))
    recipe = Recipe.from_dict({"quantization": {"method": "static_int8", "per_channel": True},
                               "calibration": {"samples": 4}})

    # execute
    result = optimize(source, recipe, InputRequest(dims={"height": 8, "width": 8}), tmp_path / "out.onnx")

    # assert
    prepare = result.steps[0]
    assert prepare.report["opset_before"] == 11 and prepare.report["opset_after"] == 13
    assert any("upgraded opset 11 → 13" in note for note in prepare.notes)
    assert opset(result.output_path) >= 13
    axes = [a.i for n in onnx.load(str(result.output_path)).graph.node if n.op_type == "DequantizeLinear"
            for a in n.attribute if a.name == "axis"]
    assert axes  # per-channel weights carry their axis
    session = ort.InferenceSession(str(result.output_path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"image": np.ones((2, 3, 8, 8), np.float32)})[0].shape == (2, 4)


def test_weights_in_constant_nodes_are_folded_before_dynamic_quantization(tmp_path):
    # setup
    path = mlp_onnx(tmp_path / "constants.onnx", constant_weights=True)
    recipe = Recipe.from_dict({"quantization": {"method": "dynamic_int8"}})

    # execute
    result = optimize(load_model(path), recipe, InputRequest(), tmp_path / "out.onnx")

    # assert
    assert sorted(result.steps[0].report["folded_constants"]) == ["b2", "w1", "w2"]
    model = onnx.load(str(result.output_path))
    assert "Constant" not in {n.op_type for n in model.graph.node}
    assert {"w1_quantized", "w2_quantized"} <= {t.name for t in model.graph.initializer}
    assert result.fidelity.outputs[0].cosine > 0.99


def test_symbolic_shape_inference_failure_is_skipped_with_a_note(tmp_path, monkeypatch):
    # setup
    source = load_model(conflicting_dims_onnx(tmp_path / "conflict.onnx"))
    working_directory = tmp_path / "cwd"
    working_directory.mkdir()
    monkeypatch.chdir(working_directory)
    recipe = Recipe.from_dict({"quantization": {"method": "dynamic_int8"}, "budget": {"min_cosine": 0.99}})

    # execute
    result = optimize(source, recipe, InputRequest(), tmp_path / "out.onnx")

    # assert
    notes = result.steps[-1].notes
    assert any("symbolic shape inference failed" in note and "skipped" in note for note in notes)
    assert result.output_path.is_file() and result.fidelity.outputs[0].cosine > 0.99
    assert list(working_directory.iterdir()) == []  # ONNX Runtime's partial model is not left behind


def test_dynamic_dims_are_calibrated_at_the_users_shape(tmp_path):
    # setup: an unpadded 3×3 conv on height×width
    source = load_model(conv_onnx(tmp_path / "dynamic.onnx", opset=13, height="h", width="w", pad=0))
    recipe = Recipe.from_dict({"quantization": {"method": "static_int8"}, "calibration": {"samples": 3},
                               "budget": {"min_cosine": 0.9}})

    # execute
    guessed = optimize(source, recipe, InputRequest(), tmp_path / "guessed.onnx")
    result = optimize(source, recipe, InputRequest(dims={"h": 6, "w": 7}), tmp_path / "out.onnx")

    # assert: unknown image sides get a size a conv can run on (never 1), and the user's dims win
    assert min(guessed.inputs["shapes"]["image"][2:]) > 3
    assert result.inputs["shapes"] == {"image": [1, 3, 6, 7]}
    session = ort.InferenceSession(str(result.output_path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"image": np.ones((1, 3, 6, 7), np.float32)})[0].shape == (1, 4)
