"""Auto quantization keeps sensitive nodes in FP32 until the budget holds, and reports what it measured."""

import onnx
import pytest

from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.optimize.optimizer import optimize
from engine.optimize.recipe import Recipe
from tests.engine.optimize.opt_models import mlp_onnx, private_cache  # noqa: F401


def auto_recipe(max_relative_error: float) -> Recipe:
    return Recipe.from_dict({
        "quantization": {"method": "auto", "auto_seconds_per_candidate": 0.03},
        "calibration": {"samples": 8}, "fidelity_samples": 8,
        "budget": {"max_relative_error": max_relative_error},
    })


def test_auto_meets_its_budget_by_keeping_the_sensitive_node_in_fp32(tmp_path):
    # setup: one huge weight makes per-tensor INT8 of fc1 lose most of that layer's precision
    source = load_model(mlp_onnx(tmp_path / "mlp.onnx", outlier=40.0, bias=False))

    # execute
    result = optimize(source, auto_recipe(0.01), InputRequest(), tmp_path / "out.onnx", threads=1)

    # assert
    report = result.auto_report
    candidates = {c["name"]: c for c in report["candidates"]}
    assert result.status == "completed" and result.fidelity.budget.met
    assert result.fidelity.outputs[0].relative_l2 <= 0.01
    assert candidates["dynamic_int8_per_tensor"]["nodes_in_fp32"] == ["fc1"]
    assert report["sensitivity"]["dynamic_int8_per_tensor"][0]["node"] == "fc1"
    chosen = candidates[report["choice"]]
    assert chosen["meets_budget"] and chosen["latency_ms"] > 0
    assert all(c["latency_ms"] is not None for c in report["candidates"] if c["meets_budget"])
    assert candidates["fp32"]["speedup_vs_fp32"] == pytest.approx(1.0)


def test_auto_keeps_fp32_when_no_int8_candidate_can_meet_the_budget(tmp_path):
    # setup
    source = load_model(mlp_onnx(tmp_path / "mlp.onnx", outlier=40.0, bias=False))

    # execute
    result = optimize(source, auto_recipe(1e-9), InputRequest(), tmp_path / "out.onnx", threads=1)

    # assert
    report = result.auto_report
    assert report["choice"] == "fp32" and "kept FP32" in report["reason"]
    assert all(not c["meets_budget"] for c in report["candidates"] if c["name"] != "fp32")
    assert all(any("at least one must stay INT8" in v for v in c["violations"])
               for c in report["candidates"] if c["name"] != "fp32")
    assert result.fidelity.budget.met
    assert not {n.op_type for n in onnx.load(str(result.output_path)).graph.node} & {"MatMulInteger", "QuantizeLinear"}
