"""Auto quantization keeps sensitive nodes in FP32 until the budget holds, and reports what it measured."""

import numpy as np
import onnx
import pytest

from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.optimize.optimizer import optimize
from engine.optimize.passes.sensitivity import excludable_nodes, weight_sqnr_ranking
from engine.optimize.recipe import Recipe
from tests.engine.optimize.opt_models import encoder_onnx, mlp_onnx, private_cache  # noqa: F401


def auto_recipe(max_relative_error: float, *, samples: int = 8, calibration: str | None = None,
                max_fp32_nodes: int = 16) -> Recipe:
    return Recipe.from_dict({
        "quantization": {"method": "auto", "auto_seconds_per_candidate": 0.03, "auto_max_fp32_nodes": max_fp32_nodes},
        "calibration": {"samples": samples, "source": calibration}, "fidelity_samples": samples,
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


def test_auto_keeps_the_given_file_byte_for_byte_when_no_int8_candidate_can_meet_the_budget(tmp_path):
    # setup: opset 11 and Constant weights, which the quantizers' clean-up changes
    path = mlp_onnx(tmp_path / "mlp.onnx", opset=11, constant_weights=True, outlier=40.0, bias=False)
    source = load_model(path)

    # execute
    result = optimize(source, auto_recipe(1e-9), InputRequest(), tmp_path / "out.onnx", threads=1)

    # assert
    report = result.auto_report
    assert report["choice"] == "fp32"
    assert report["reason"].startswith("no INT8 candidate met the budget relative error ≤ 1e-09 (best: ")
    assert result.output_path.read_bytes() == path.read_bytes()
    assert all(not c["meets_budget"] for c in report["candidates"] if c["name"] != "fp32")
    assert all(any("at least one must stay INT8" in v for v in c["violations"])
               for c in report["candidates"] if c["name"] != "fp32")
    assert result.fidelity.budget.met
    assert not {n.op_type for n in onnx.load(str(result.output_path)).graph.node} & {"MatMulInteger", "QuantizeLinear"}


def test_sqnr_ranking_covers_an_encoder_with_scalar_shared_and_constant_weights(tmp_path):
    # setup: 40 MatMuls (30 with weights), above the exclude-one limit for both families
    source = load_model(encoder_onnx(tmp_path / "encoder.onnx"))

    # execute
    recipe = auto_recipe(1e-9, samples=2, max_fp32_nodes=1)  # a budget no candidate meets: every family ranks
    result = optimize(source, recipe, InputRequest(), tmp_path / "out.onnx", threads=1)

    # assert: every family ranked every node it can exclude, with the SQNR measures
    sensitivity = result.auto_report["sensitivity"]
    for name in ("dynamic_int8_per_tensor", "dynamic_int8_per_channel"):
        assert len(sensitivity[name]) == 30
        assert {entry["metric"] for entry in sensitivity[name]} == {"weight SQNR dB (low = sensitive)"}
    for name in ("static_int8_per_tensor", "static_int8_per_channel"):
        assert len(sensitivity[name]) == 40
        assert {entry["metric"] for entry in sensitivity[name]} == {"SQNR dB (low = sensitive)"}
    assert {"l4_q", "l4_o", "l0_o"} <= {entry["node"] for entry in sensitivity["static_int8_per_tensor"]}


def test_auto_judges_candidates_on_held_out_real_samples(tmp_path):
    # setup: 8 real samples: 6 calibrate, the last 2 grade
    source = load_model(mlp_onnx(tmp_path / "mlp.onnx"))
    data = tmp_path / "real.npz"
    np.savez(data, x=np.random.default_rng(1).standard_normal((8, 1, 16)).astype(np.float32))

    # execute
    result = optimize(source, auto_recipe(1.0, calibration=str(data)), InputRequest(), tmp_path / "out.onnx",
                      threads=1)

    # assert
    report = result.auto_report
    assert report["fidelity_samples"] == 2 and report["fidelity_is_synthetic"] is False
    assert f"from {data}, held out from calibration" in report["fidelity_data"]


def test_weight_sqnr_ranks_weights_held_in_constant_nodes(tmp_path):
    # setup: the encoder as exported, before any clean-up: its last layer's weights are Constant nodes
    model = onnx.load(str(encoder_onnx(tmp_path / "encoder.onnx")))
    nodes = excludable_nodes(model, dynamic=True)

    # execute
    ranking = weight_sqnr_ranking(model, nodes, per_channel=True)

    # assert
    assert len(nodes) == len(ranking) == 30
    assert {"l4_q", "l4_ff2"} <= {entry.node for entry in ranking}
    assert all(entry.score > 0 for entry in ranking)
