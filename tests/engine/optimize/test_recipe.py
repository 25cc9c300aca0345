"""Recipe JSON round-trip and validation, and what the plan says before anything runs."""

import json

import pytest

from engine.device.discovery import DeviceRunner
from engine.errors import OptimizationError, RecipeError
from engine.model.opening import load_model
from engine.optimize.passes import get_pass
from engine.optimize.plan import option_applicability, plan_optimization
from engine.optimize.recipe import Recipe
from tests.conftest import REPO, SAMPLE_CNN, SAMPLE_TRANSFORMER

CPU = DeviceRunner("onnxruntime", "CPUExecutionProvider")
CUDA = DeviceRunner("onnxruntime", "CUDAExecutionProvider", {"device_id": 0})


def test_recipe_round_trips_through_json(tmp_path):
    # setup
    recipe = Recipe.from_dict({
        "pruning": {"method": "structured", "ratio": 0.3, "importance": "taylor", "ignored_layers": ["head"],
                    "round_to": 8, "global_pruning": True},
        "low_rank": {"method": "energy", "energy": 0.95},
        "graph": {"level": "extended"},
        "calibration": {"source": "calib.npz", "samples": 64},
        "quantization": {"method": "static_int8", "per_channel": True, "calibration_method": "percentile",
                         "percentile": 99.9, "nodes_to_exclude": ["conv0"]},
        "budget": {"min_cosine": 0.995, "max_top1_disagreement": 0.01},
        "fidelity_samples": 16,
        "seed": 5,
    })
    path = tmp_path / "recipe.json"

    # execute
    recipe.save(path)
    loaded = Recipe.load(path)

    # assert
    assert loaded == recipe
    assert json.loads(path.read_text()) == recipe.to_dict()
    assert loaded.pruning.ignored_layers == ["head"] and loaded.quantization.percentile == 99.9


@pytest.mark.parametrize(("data", "words"), [
    ({"pruning": {"ratio": 1.5}}, ["pruning.ratio", "0 < ratio < 1"]),
    ({"pruning": {"ratio": 0}}, ["pruning.ratio", "0 < ratio < 1"]),
    ({"pruning": {"method": "magic"}}, ["pruning.method", "structured"]),
    ({"pruning": {"round_to": 2.5}}, ["pruning.round_to", "whole number"]),
    ({"pruning": {"global_pruning": 1}}, ["pruning.global_pruning", "true or false"]),
    ({"low_rank": {"energy": 1.2}}, ["low_rank.energy", "≤ 1"]),
    ({"calibration": {"samples": 0}}, ["calibration.samples", "1 ≤ samples"]),
    ({"quantization": {"method": "int4"}}, ["quantization.method", "dynamic_int8"]),
    ({"quantization": {"calibration_method": "mse"}}, ["quantization.calibration_method", "entropy"]),
    ({"quantization": {"nodes_to_exclude": "conv0"}}, ["quantization.nodes_to_exclude", "list"]),
    ({"budget": {"min_cosine": "high"}}, ["budget.min_cosine", "number"]),
    ({"budget": {"max_relative_error": -0.1}}, ["budget.max_relative_error", "0 ≤"]),
    ({"fidelity_samples": 0}, ["fidelity_samples"]),
    ({"pruning": {"amount": 0.5}}, ["pruning", "amount", "allowed"]),
    ({"quantisation": {}}, ["quantisation", "allowed"]),
])
def test_recipe_validation_names_the_field_and_its_range(data, words):
    # execute
    with pytest.raises(RecipeError) as caught:
        Recipe.from_dict(data)

    # assert
    for word in words:
        assert word in str(caught.value)


def test_recipe_file_errors_name_the_file(tmp_path):
    # setup
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")

    # execute / assert
    with pytest.raises(RecipeError, match="broken.json.*not valid JSON"):
        Recipe.load(broken)
    with pytest.raises(RecipeError, match="missing.json"):
        Recipe.load(tmp_path / "missing.json")


def test_pruning_an_onnx_file_is_refused_before_running_with_the_reason():
    # setup
    handle = load_model(SAMPLE_CNN)
    recipe = Recipe.from_dict({"pruning": {"method": "structured"}, "low_rank": {"method": "rank_ratio"}})

    # execute
    plan = plan_optimization(handle, recipe, CPU)

    # assert
    assert plan.blocked and "ONNX file has no PyTorch module" in plan.blocked[0]
    with pytest.raises(OptimizationError, match="pruning and low-rank cannot run"):
        plan.raise_if_blocked()


def test_plan_says_what_cannot_help_before_running():
    # setup
    cnn, transformer = load_model(SAMPLE_CNN), load_model(SAMPLE_TRANSFORMER)

    # execute
    fp16 = plan_optimization(transformer, Recipe.from_dict({"quantization": {"method": "fp16"}}), CPU)
    dynamic_cnn = plan_optimization(cnn, Recipe.from_dict({"quantization": {"method": "dynamic_int8"}}), CPU)
    int8_gpu = plan_optimization(cnn, Recipe.from_dict({"quantization": {"method": "static_int8"}}), CUDA)
    graph = plan_optimization(cnn, Recipe.from_dict({"graph": {"level": "all"},
                                                      "quantization": {"method": "static_int8"}}), CPU)
    auto = plan_optimization(cnn, Recipe.from_dict({"quantization": {"method": "auto"}}), CPU)

    # assert
    assert [s.pass_name for s in fp16.steps] == ["prepare_onnx", "fp16"]
    assert any("slower" in note for note in fp16.steps[-1].expectations)
    assert any("ConvInteger" in note for note in dynamic_cnn.steps[-1].expectations)
    assert any("TensorRT" in note for note in int8_gpu.steps[-1].expectations)
    graph_step = next(s for s in graph.steps if s.pass_name == "graph_optimization")
    assert graph_step.config.level == "basic" and any("quantizer cannot" in n for n in graph_step.expectations)
    assert [s.pass_name for s in graph.steps] == ["prepare_onnx", "graph_optimization", "static_int8"]
    assert auto.notes == ("no accuracy budget given: auto quantization uses cosine ≥ 0.99",)


def test_an_empty_recipe_on_onnx_is_refused():
    # execute
    plan = plan_optimization(load_model(SAMPLE_CNN), Recipe(), CPU)

    # assert
    assert plan.blocked == ("the recipe changes nothing: choose pruning, low-rank, graph optimization or quantization",)


def test_option_applicability_greys_out_module_passes_for_onnx():
    # execute
    options = option_applicability(load_model(SAMPLE_CNN), CPU)

    # assert
    assert not options["pruning.structured"].available
    assert "factory" in options["pruning.structured"].reason
    assert not options["low_rank"].available
    assert options["quantization.static_int8"].available
    unstructured = option_applicability(load_model(f"{REPO / 'resources' / 'make_sample_models.py'}:sample_cnn"), CPU)
    assert unstructured["pruning.unstructured"].available
    assert any("no speedup" in note for note in unstructured["pruning.unstructured"].expectations)
    assert any("slower" in note for note in options["quantization.fp16"].expectations)


def test_a_pass_config_is_built_from_its_knobs_the_recipe_and_the_device():
    # setup
    recipe = Recipe.from_dict({"quantization": {"method": "auto", "nodes_to_exclude": ["conv0"]},
                               "calibration": {"samples": 8}, "fidelity_samples": 5})

    # execute
    config = recipe.config_for(get_pass("auto_quantization"), CUDA)

    # assert
    assert config.nodes_to_exclude == ("conv0",) and config.auto_max_fp32_nodes == 16  # its own knobs
    assert config.calibration_samples == 8 and config.fidelity_samples == 5  # named from the recipe
    assert config.budget.min_cosine == 0.99  # auto without a budget: the default one
    assert config.provider == "CUDAExecutionProvider"  # from the device


def test_every_knob_of_every_pass_is_in_its_recipe_section():
    # setup
    from dataclasses import fields

    from engine.optimize.params import KNOB
    from engine.optimize.passes import registered

    # execute
    defaults = Recipe().to_dict()

    # assert
    for implementation in registered().values():
        for spec in fields(implementation.config_type):
            if KNOB in spec.metadata:
                assert spec.name in defaults[implementation.section.name], (implementation.name, spec.name)
