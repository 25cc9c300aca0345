"""Structured and unstructured pruning and low-rank factorization on small PyTorch factories."""

import threading

import numpy as np
import onnxruntime as ort
import pytest

from engine.device.discovery import DeviceRunner
from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.model.torch_loader import load_module
from engine.optimize.optimizer import optimize
from engine.optimize.passes import TorchArtifact, get_pass
from engine.optimize.passes.base import PassContext
from engine.optimize.passes.model_inputs import FeedSpecs, ModelInputs
from engine.optimize.recipe import CalibrationSettings, Recipe
from tests.engine.optimize.opt_models import private_cache, torch_factories  # noqa: F401

torch = pytest.importorskip("torch")
CNN_SHAPE = InputRequest(shapes={"image": (1, 3, 16, 16)})
TOKENS_SHAPE = InputRequest(shapes={"tokens": (1, 6, 8)})


def pass_context(tmp_path, request: InputRequest, handle) -> PassContext:
    inputs = ModelInputs(request, 0, CalibrationSettings(samples=4))
    return PassContext(threading.Event(), lambda fraction, message: None, tmp_path, tmp_path / "out.onnx",
                       DeviceRunner("onnxruntime", "CPUExecutionProvider"), inputs, FeedSpecs.of_handle(handle))


def torch_artifact(factory: str, request: InputRequest, tmp_path):
    handle = load_model(f"{torch_factories(tmp_path)}:{factory}")
    module = load_module(handle.path, handle.format, function=handle.factory_function)
    inputs = ModelInputs(request, 0, CalibrationSettings())
    feed = inputs.feed(FeedSpecs.of_handle(handle)).feed
    return handle, TorchArtifact(module, tuple(feed), feed)


def run_pass(name: str, recipe: Recipe, artifact, context):
    implementation = get_pass(name)
    config = recipe.config_for(implementation, context.runner)
    return implementation.run(artifact, config, context)


def test_structured_pruning_removes_parameters_and_the_export_still_runs(tmp_path):
    # setup
    handle = load_model(f"{torch_factories(tmp_path)}:small_cnn")
    recipe = Recipe.from_dict({"pruning": {"method": "structured", "ratio": 0.5, "importance": "taylor"},
                               "calibration": {"samples": 3}})

    # execute
    result = optimize(handle, recipe, CNN_SHAPE, tmp_path / "pruned.onnx")

    # assert
    pruning = result.steps[0].report
    assert pruning["parameters_after"] < 0.5 * pruning["parameters_before"]
    assert {"layer": "features.0", "before": 16, "after": 8} in pruning["layers"]
    assert not any(layer["layer"] == "classifier" for layer in pruning["layers"])  # the output layer stays whole
    assert result.fidelity.optimized.parameters < result.fidelity.original.parameters
    assert result.fidelity.optimized.macs.total < 0.5 * result.fidelity.original.macs.total
    session = ort.InferenceSession(str(result.output_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": np.ones((3, 3, 16, 16), np.float32)})[0]
    assert logits.shape == (3, 5)  # the batch axis stayed dynamic through pruning and export
    assert result.fidelity.outputs[0].top1_agreement is not None


def test_attention_heads_are_pruned_whole_and_the_head_count_follows(tmp_path):
    # setup
    handle, artifact = torch_artifact("small_encoder", TOKENS_SHAPE, tmp_path)
    recipe = Recipe.from_dict({"pruning": {"method": "structured", "ratio": 0.5}})

    # execute
    output = run_pass("structured_pruning", recipe, artifact, pass_context(tmp_path, TOKENS_SHAPE, handle))

    # assert
    block = output.artifact.module.block
    assert output.report["attention_heads"] == [{"module": "block", "before": 4, "after": 2}]
    assert block.num_heads == 2 and block.qkv.out_features == 3 * 2 * 8  # two heads of width 8 each
    with torch.no_grad():
        assert output.artifact.module(torch.ones(2, 5, 8)).shape == (2, 3)
    assert artifact.module.block.num_heads == 4  # the previous step's module is left as it was


def test_unstructured_pruning_reports_sparsity_without_promising_speed(tmp_path):
    # setup
    handle, artifact = torch_artifact("small_cnn", CNN_SHAPE, tmp_path)
    recipe = Recipe.from_dict({"pruning": {"method": "unstructured", "ratio": 0.6}})
    implementation = get_pass("unstructured_pruning")

    # execute
    output = run_pass("unstructured_pruning", recipe, artifact, pass_context(tmp_path, CNN_SHAPE, handle))

    # assert
    module = output.artifact.module
    assert float((module.features[0].weight == 0).float().mean()) == pytest.approx(0.6, abs=0.02)
    assert float((module.classifier.weight == 0).float().mean()) == 0.0
    assert output.report["speedup_expected"] is False
    config = recipe.config_for(implementation, DeviceRunner("onnxruntime", "CPUExecutionProvider"))
    assert "expect no speedup" in implementation.expectations(config, None, None)[0]


def test_low_rank_factorizes_only_where_it_lowers_the_work(tmp_path):
    # setup
    handle, artifact = torch_artifact("small_encoder", TOKENS_SHAPE, tmp_path)
    context = pass_context(tmp_path, TOKENS_SHAPE, handle)
    low = Recipe.from_dict({"low_rank": {"method": "rank_ratio", "rank_ratio": 0.25}})
    high = Recipe.from_dict({"low_rank": {"method": "rank_ratio", "rank_ratio": 0.9}})

    # execute
    thin = run_pass("low_rank", low, artifact, context)
    thick = run_pass("low_rank", high, artifact, context)

    # assert
    qkv = next(entry for entry in thin.report["layers"] if entry["layer"] == "block.qkv")
    assert qkv["factorized"] and qkv["rank"] == 8 and qkv["rank"] < qkv["break_even_rank"] == 24
    assert isinstance(thin.artifact.module.block.qkv, torch.nn.Sequential)
    assert thin.report["parameters_after"] < thin.report["parameters_before"]
    assert thick.report["factorized"] == 0
    assert all("would cost more" in entry["reason"] for entry in thick.report["layers"])
    with torch.no_grad():
        reference = artifact.module(torch.from_numpy(artifact.example_feed["tokens"]))
        approximate = thin.artifact.module(torch.from_numpy(artifact.example_feed["tokens"]))
    assert approximate.shape == reference.shape


def test_energy_rank_keeps_the_requested_share():
    # setup
    from engine.optimize.passes.low_rank import LowRankConfig, chosen_rank

    singular = torch.tensor([3.0, 2.0, 1.0, 0.5])
    config = LowRankConfig(method="energy", energy=0.9)

    # execute
    rank = chosen_rank(singular, config)

    # assert: 9 + 4 = 13 of 14.25 is 91 %, 9 alone is 63 %
    assert rank == 2
