"""Fidelity metrics, budget checks, task accuracy and MACs."""

import math

import numpy as np
import pytest

from engine.errors import CalibrationDataError
from engine.model.inputs import InputRequest
from engine.model.macs import count_macs
from engine.model.opening import load_model
from engine.optimize.fidelity import check_budget
from engine.optimize.output_metrics import compare_outputs
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


@pytest.mark.parametrize(("name", "sample", "kind"), [
    ("target_label", np.full((1, 214), 1 / 214, dtype=np.float32), "logits"),  # a classifier's probabilities
    ("fetch_name_0", np.array([[0.3, -1.2, 2.0, 0.1]], dtype=np.float32), "logits"),  # unnamed class scores
    ("sentence_embedding", np.ones((1, 384), dtype=np.float32), "embedding"),
    ("last_hidden_state", np.ones((1, 16, 384), dtype=np.float32), "embedding"),
    ("output", np.array([[0.6, -0.8]], dtype=np.float32), "embedding"),  # unit-norm rows: a normalized embedding
    ("output0", np.ones((1, 84, 8400), dtype=np.float32), "map"),  # a detector's raw predictions
    ("mask", np.ones((1, 1, 32, 32), dtype=np.float32), "map"),
    ("ids", np.ones((1, 8), dtype=np.int64), "values"),
    ("score", np.ones((1, 1), dtype=np.float32), "values"),
])
def test_output_kind_from_name_shape_dtype_and_values(name, sample, kind):
    from engine.optimize.output_metrics import output_kind

    assert output_kind(name, sample) == kind


def test_near_zero_outputs_are_not_measurable_and_show_no_figure():
    # setup: a detector whose outputs on noise are ~1e-8, and an optimized model that is nothing like it
    rng = np.random.default_rng(0)
    reference = [{"heat": rng.standard_normal((1, 1, 8, 8)) * 1e-8} for _ in range(3)]
    candidate = [{"heat": rng.standard_normal((1, 1, 8, 8)) * 1e-8} for _ in range(3)]

    # execute
    [output] = compare_outputs(reference, candidate)
    verdict = check_budget([output], AccuracyBudget.default())

    # assert
    assert not output.measurable and "~0" in output.not_measurable
    assert output.to_dict()["cosine"] is None and output.to_dict()["max_abs_error"] is None
    assert not verdict.met and verdict.verdict == "not judged" and not verdict.violations
    assert "not measurable on these inputs" in verdict.not_judged[0]


@pytest.mark.parametrize(("values", "reason"), [
    (np.array([[np.nan, 1.0, 2.0]]), "NaN or inf"),
    (np.full((1, 4, 4), 0.5), "constant"),
])
def test_nan_and_constant_outputs_are_not_measurable(values, reason):
    [output] = compare_outputs([{"y": values}], [{"y": np.full_like(values, 0.5)}])
    assert reason in output.not_measurable and not check_budget([output], AccuracyBudget(min_cosine=0.0)).met


def test_an_optimized_model_giving_nan_is_below_budget():
    [output] = compare_outputs([{"y": np.array([[1.0, 2.0, 3.0]])}], [{"y": np.array([[1.0, np.nan, 3.0]])}])
    verdict = check_budget([output], AccuracyBudget(min_cosine=-1.0))
    assert output.measurable and not verdict.met and "NaN or inf" in verdict.violations[0]


def test_classifier_figures_top1_top5_and_kl():
    # setup: 10 classes; the second input's top class drops to second place, still in the top 5
    reference = [{"logits": np.array([[5.0, 1, 0, 0, 0, 0, 0, 0, 0, 0]])},
                 {"logits": np.array([[0.0, 4, 3, 0, 0, 0, 0, 0, 0, 0]])}]
    candidate = [{"logits": np.array([[5.0, 1, 0, 0, 0, 0, 0, 0, 0, 0]])},
                 {"logits": np.array([[0.0, 3, 4, 0, 0, 0, 0, 0, 0, 0]])}]

    # execute
    [output] = compare_outputs(reference, candidate)

    # assert
    assert output.kind == "logits" and output.top1_agreement == 0.5 and output.top5_agreement == 1.0
    p = np.exp([0.0, 4, 3] + [0] * 7) / np.exp([0.0, 4, 3] + [0] * 7).sum()
    q = np.exp([0.0, 3, 4] + [0] * 7) / np.exp([0.0, 3, 4] + [0] * 7).sum()
    assert output.kl_divergence == pytest.approx(np.sum(p * np.log(p / q)) / 2)
    assert "top-5 agreement" in output.to_dict()["metrics"]


def test_embeddings_get_the_pooled_cosine_and_no_top1():
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((1, 6, 16))
    [output] = compare_outputs([{"last_hidden_state": tokens}], [{"last_hidden_state": tokens + 0.01}])
    assert output.kind == "embedding" and output.top1_agreement is None and output.top5_agreement is None
    assert output.pooled_cosine == pytest.approx(1.0, abs=1e-3)


def test_probability_maps_get_thresholded_agreement():
    reference = np.array([[[0.1, 0.9], [0.6, 0.2]]])
    [output] = compare_outputs([{"heatmap": reference}], [{"heatmap": np.array([[[0.1, 0.4], [0.6, 0.2]]])}])
    assert output.kind == "map" and output.threshold_agreement == 0.75 and output.top1_agreement is None


def test_the_default_top1_limit_skips_a_model_without_class_scores_but_a_set_one_is_not_judged():
    [output] = compare_outputs([{"sentence_embedding": np.array([[0.5, 0.2, 0.1]])}],
                               [{"sentence_embedding": np.array([[0.5, 0.2, 0.1]])}])
    default = check_budget([output], AccuracyBudget.default())
    assert default.met and default.default and "top-1 limit does not apply" in default.notes[0]
    chosen = check_budget([output], AccuracyBudget(max_top1_disagreement=0.05))
    assert not chosen.met and not chosen.default and "top-1 limit does not apply" in chosen.not_judged[0]


def test_every_optimization_is_graded_against_the_default_budget_on_synthetic_inputs(tmp_path):
    # setup
    model = load_model(mlp_onnx(tmp_path / "mlp.onnx"))

    # execute
    result = optimize(model, Recipe.from_dict({"graph": {"level": "basic"}}), InputRequest(), tmp_path / "out.onnx")

    # assert
    budget = result.fidelity.to_dict()["budget"]
    assert budget["source"] == "default" and budget["budget"] == "cosine ≥ 0.99, top-1 disagreement ≤ 0.01"
    assert result.accepted and result.fidelity.synthetic
    assert result.fidelity.summary() == "worst cosine 1.00000 (on 32 synthetic inputs)"
