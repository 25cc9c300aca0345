"""Fidelity metrics, budget checks, task accuracy and MACs."""

import math

import numpy as np
import pytest

from engine.errors import CalibrationDataError
from engine.model.inputs import InputRequest
from engine.model.macs import count_macs
from engine.model.opening import load_model
from engine.optimize.fidelity import check_budget, compare_outputs
from engine.optimize.optimizer import optimize
from engine.optimize.recipe import AccuracyBudget, Recipe
from tests.engine.optimize.opt_models import conv_onnx, mlp_onnx, private_cache  # noqa: F401


def test_metrics_on_known_outputs():
    # setup
    reference = [{"logits": np.array([[1.0, 0.0, 0.0]])}, {"logits": np.array([[0.0, 2.0, 0.0]])}]
    candidate = [{"out": np.array([[1.0, 0.0, 0.0]])}, {"out": np.array([[0.0, 1.0, 1.5]])}]

    # execute
    [output] = compare_outputs(reference, candidate)

    # assert: matched by position since the names differ
    assert output.name == "logits"
    assert output.cosine == pytest.approx((1.0 + 1.0 / math.sqrt(3.25)) / 2)
    assert output.cosine_min == pytest.approx(1.0 / math.sqrt(3.25))
    assert output.max_abs_error == pytest.approx(1.5)
    assert output.relative_l2 == pytest.approx(math.sqrt(1 + 2.25) / math.sqrt(5))
    assert output.sqnr_db == pytest.approx(-20 * math.log10(output.relative_l2))
    assert output.top1_agreement == 0.5


def test_identical_outputs_have_infinite_sqnr_reported_as_identical():
    # setup
    runs = [{"y": np.arange(6.0).reshape(2, 3)}]

    # execute
    [output] = compare_outputs(runs, runs)

    # assert
    assert output.to_dict()["identical"] and output.to_dict()["sqnr_db"] is None
    assert output.cosine == 1.0 and output.relative_l2 == 0.0


def test_budget_check_names_each_violation():
    # setup
    [output] = compare_outputs([{"y": np.array([[1.0, 0.0]])}], [{"y": np.array([[0.0, 1.0]])}])
    budget = AccuracyBudget(min_cosine=0.99, max_top1_disagreement=0.0, max_relative_error=0.5)

    # execute
    verdict = check_budget([output], budget)

    # assert
    assert not verdict.met and len(verdict.violations) == 3
    assert "cosine 0.00000 < 0.99" in verdict.violations[0]
    assert check_budget([output], AccuracyBudget(min_cosine=-1.0)).met


def test_macs_per_layer_from_shape_inference(tmp_path):
    # setup
    conv = conv_onnx(tmp_path / "conv.onnx", opset=13)
    mlp = mlp_onnx(tmp_path / "mlp.onnx")

    # execute
    conv_macs = count_macs(conv, {"image": (2, 3, 10, 10)})
    mlp_macs = count_macs(mlp, {"x": (5, 16)})

    # assert
    layers = {layer.name: layer.macs for layer in conv_macs.layers}
    assert layers == {"conv": 2 * 8 * 10 * 10 * 3 * 3 * 3, "fc": 2 * 4 * 8}
    assert mlp_macs.total == 5 * 32 * 16 + 5 * 4 * 32 and mlp_macs.unknown == 0


def test_task_accuracy_from_labelled_npz(tmp_path):
    # setup
    model = load_model(mlp_onnx(tmp_path / "mlp.onnx"))
    x = np.random.default_rng(1).standard_normal((6, 16)).astype(np.float32)
    data = tmp_path / "labelled.npz"
    np.savez(data, x=x, labels=np.array([0, 1, 2, 3, 0, 1]))
    recipe = Recipe.from_dict({"quantization": {"method": "dynamic_int8"}})

    # execute
    result = optimize(model, recipe, InputRequest(), tmp_path / "out.onnx", accuracy_data=data)

    # assert
    task = result.fidelity.task_accuracy
    assert task["samples"] == 6 and 0.0 <= task["optimized"] <= 1.0
    assert task["original"] == pytest.approx(task["optimized"], abs=1 / 6)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x)
    with pytest.raises(CalibrationDataError, match="no 'labels'"):
        optimize(model, recipe, InputRequest(), tmp_path / "out2.onnx", accuracy_data=bad)
