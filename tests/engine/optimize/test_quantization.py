"""Quantization, FP16 and graph passes on tiny ONNX models: outputs load in plain ONNX Runtime, cache reuse."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from engine.errors import OptimizationError
from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.optimize.optimizer import measure_before_after, optimize
from engine.optimize.recipe import Recipe
from tests.engine.optimize.opt_models import conv_onnx, mlp_onnx, private_cache  # noqa: F401


def plain_ort_run(path, feed):
    """What a user does with the file: plain ONNX Runtime, nothing from the studio."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def ops(path):
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_dynamic_int8_output_loads_in_plain_onnxruntime(tmp_path):
    # setup
    source = load_model(mlp_onnx(tmp_path / "mlp.onnx"))
    recipe = Recipe.from_dict({"quantization": {"method": "dynamic_int8"}})

    # execute
    result = optimize(source, recipe, InputRequest(batch=2), tmp_path / "out.onnx")

    # assert
    assert result.status == "completed" and result.output_path == tmp_path / "out.onnx"
    assert ops(result.output_path) & {"MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear"}
    feed = {"x": np.ones((3, 16), np.float32)}
    assert plain_ort_run(result.output_path, feed).shape == (3, 4)
    assert result.fidelity.outputs[0].cosine > 0.99
    assert [step.pass_name for step in result.steps] == ["prepare_onnx", "dynamic_int8"]


def test_static_int8_per_channel_is_qdq_and_loads_in_plain_onnxruntime(tmp_path):
    # setup
    source = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    recipe = Recipe.from_dict({"quantization": {"method": "static_int8", "per_channel": True,
                                                "calibration_method": "entropy"}, "calibration": {"samples": 4}})

    # execute
    result = optimize(source, recipe, InputRequest(dims={"height": 8, "width": 8}), tmp_path / "out.onnx")

    # assert
    model = onnx.load(str(result.output_path))
    dequantize = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert any(len(onnx.numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == n.input[1]))) == 8
               for n in dequantize)  # a per-channel scale: one per output channel of the conv
    feed = {"image": np.zeros((1, 3, 8, 8), np.float32)}
    assert plain_ort_run(result.output_path, feed).shape == (1, 4)
    step = result.steps[-1]
    assert any("calibrated (entropy) on 4 sample(s)" in note for note in step.notes)
    assert step.report["quantized_ops"]


def test_fp16_keeps_float32_io_and_halves_weights(tmp_path):
    # setup
    source = load_model(mlp_onnx(tmp_path / "mlp.onnx"))
    recipe = Recipe.from_dict({"quantization": {"method": "fp16"}})

    # execute
    result = optimize(source, recipe, InputRequest(), tmp_path / "out.onnx")

    # assert
    model = onnx.load(str(result.output_path))
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert plain_ort_run(result.output_path, {"x": np.ones((1, 16), np.float32)}).dtype == np.float32
    assert any("slower" in note for note in result.plan.steps[-1].expectations)


def test_graph_optimization_saves_the_optimized_model(tmp_path):
    # setup
    source = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    recipe = Recipe.from_dict({"graph": {"level": "extended"}})

    # execute
    result = optimize(source, recipe, InputRequest(dims={"height": 8, "width": 8}), tmp_path / "out.onnx")

    # assert
    report = result.steps[0].report
    assert report["level"] == "extended" and report["nodes_after"] < report["nodes_before"]
    assert "com.microsoft.FusedConv" in report["new_ops"]
    assert plain_ort_run(result.output_path, {"image": np.zeros((1, 3, 8, 8), np.float32)}).shape == (1, 4)


def test_second_run_comes_from_the_cache_with_provenance(tmp_path, private_cache):  # noqa: F811
    # setup
    source = load_model(mlp_onnx(tmp_path / "mlp.onnx"))
    recipe = Recipe.from_dict({"quantization": {"method": "dynamic_int8", "per_channel": True}})
    first = optimize(source, recipe, InputRequest(), tmp_path / "first.onnx")

    # execute
    second = optimize(source, recipe, InputRequest(), tmp_path / "second.onnx")

    # assert
    assert [s.cached for s in first.steps] == [False, False]
    assert [s.cached for s in second.steps] == [True, True]
    assert (tmp_path / "first.onnx").read_bytes() == (tmp_path / "second.onnx").read_bytes()
    entry = first.steps[-1].output_path.parent
    assert entry.is_relative_to(private_cache)
    provenance = json.loads((entry / "provenance.json").read_text())
    assert provenance["pass"] == "dynamic_int8" and provenance["parent_key"] == first.steps[0].key
    assert provenance["config"]["per_channel"] is True and provenance["started_at"] <= provenance["finished_at"]
    assert not list(private_cache.glob(".staging-*"))


def test_budget_miss_writes_nothing(tmp_path):
    # setup
    source = load_model(mlp_onnx(tmp_path / "mlp.onnx", outlier=40.0))
    recipe = Recipe.from_dict({"quantization": {"method": "dynamic_int8"}, "budget": {"max_relative_error": 1e-6}})

    # execute
    result = optimize(source, recipe, InputRequest(), tmp_path / "out.onnx")

    # assert
    assert result.status == "budget_not_met" and result.output_path is None
    assert not (tmp_path / "out.onnx").exists()
    assert not result.fidelity.budget.met and "relative error" in result.fidelity.budget.violations[0]


def test_output_path_must_be_onnx_and_not_the_source(tmp_path):
    # setup
    path = mlp_onnx(tmp_path / "mlp.onnx")
    recipe = Recipe.from_dict({"quantization": {"method": "dynamic_int8"}})

    # execute / assert
    with pytest.raises(OptimizationError, match="ending in .onnx"):
        optimize(load_model(path), recipe, InputRequest(), tmp_path / "out.pt")
    with pytest.raises(OptimizationError, match="is the source model"):
        optimize(load_model(path), recipe, InputRequest(), path)


def test_before_after_latency_is_measured_side_by_side(tmp_path):
    # setup
    source = load_model(mlp_onnx(tmp_path / "mlp.onnx"))
    result = optimize(source, Recipe.from_dict({"quantization": {"method": "dynamic_int8"}}), InputRequest(),
                      tmp_path / "out.onnx")

    # execute
    timing = measure_before_after(result, InputRequest(), threads=1, seconds_each=0.02, rounds=2)

    # assert
    assert timing["baseline"]["samples"] >= 10 and timing["optimized"]["samples"] >= 10
    assert timing["speedup"] == timing["baseline"]["median_ms"] / timing["optimized"]["median_ms"]
    assert timing["macs"]["baseline"] == timing["macs"]["optimized"] == 16 * 32 + 32 * 4


def test_dynamic_int8_quantizes_only_the_op_types_asked_for(tmp_path):
    # setup
    source = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    shapes = InputRequest(dims={"height": 8, "width": 8})
    every_type = Recipe.from_dict({"quantization": {"method": "dynamic_int8"}})
    gemm_only = Recipe.from_dict({"quantization": {"method": "dynamic_int8", "op_types_to_quantize": ["Gemm"]}})

    # execute
    quantized = optimize(source, every_type, shapes, tmp_path / "every_type.onnx")
    conv_kept = optimize(source, gemm_only, shapes, tmp_path / "conv_kept.onnx")

    # assert: ONNX Runtime's quantizer got the list (ConvInteger is what it makes of a Conv)
    assert "ConvInteger" in ops(quantized.output_path)
    assert "ConvInteger" not in ops(conv_kept.output_path) and "Conv" in ops(conv_kept.output_path)
    assert conv_kept.steps[-1].config["op_types_to_quantize"] == ("Gemm",)


def test_an_op_type_the_model_does_not_have_is_refused_not_a_silent_no_op(tmp_path):
    # setup: a conv net has no MatMul
    source = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    matmul_only = Recipe.from_dict({"quantization": {"method": "dynamic_int8", "op_types_to_quantize": ["MatMul"]}})
    # execute / assert
    with pytest.raises(OptimizationError, match=r"does not have: MatMul \(it has .*Conv.*Gemm"):
        optimize(source, matmul_only, InputRequest(dims={"height": 8, "width": 8}), tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_the_conv_integer_warning_is_left_out_when_conv_stays_fp32(tmp_path):
    # setup
    from engine.device.discovery import DeviceRunner
    from engine.optimize.plan import plan_optimization

    source = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    cpu = DeviceRunner("onnxruntime", "CPUExecutionProvider")
    every_type = Recipe.from_dict({"quantization": {"method": "dynamic_int8"}})
    gemm_only = Recipe.from_dict({"quantization": {"method": "dynamic_int8", "op_types_to_quantize": ["Gemm"]}})
    # execute
    warned = plan_optimization(source, every_type, cpu).steps[-1].expectations
    kept = plan_optimization(source, gemm_only, cpu).steps[-1].expectations
    # assert
    assert any("ConvInteger" in note for note in warned)
    assert not any("ConvInteger" in note for note in kept)
