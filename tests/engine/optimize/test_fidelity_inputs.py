"""Fidelity is measured on the user's own samples when any were given, never on the ones it was calibrated with."""

import numpy as np

from engine.model.inputs import InputRequest
from engine.optimize.passes.model_inputs import FeedSpecs, ModelInputs
from engine.optimize.settings import CalibrationSettings
from tests.engine.optimize.opt_models import mlp_onnx


def inputs_with(source, samples: int) -> ModelInputs:
    return ModelInputs(InputRequest(), 0, CalibrationSettings(source=str(source) if source else None, samples=samples))


def test_real_samples_are_split_into_disjoint_calibration_and_evaluation_sets(tmp_path):
    # setup: 10 samples whose first value is their number
    specs = FeedSpecs.of_onnx(mlp_onnx(tmp_path / "mlp.onnx"))
    data = np.zeros((10, 1, 16), np.float32)
    data[:, 0, 0] = np.arange(10)
    np.savez(tmp_path / "real.npz", x=data)
    inputs = inputs_with(tmp_path / "real.npz", 10)

    # execute
    calibration = inputs.calibration_samples(specs)
    evaluation = inputs.fidelity_feeds(specs, 8)

    # assert: the last max(1, 10 // 4) = 2 are held out
    assert [int(f["x"][0, 0]) for f in calibration] == list(range(8))
    assert [int(f["x"][0, 0]) for f in evaluation] == [8, 9]
    assert not inputs.fidelity_is_synthetic
    assert "real sample(s) from" in inputs.describe_fidelity_data(8)


def test_without_calibration_data_fidelity_is_synthetic_and_says_so(tmp_path):
    # setup
    specs = FeedSpecs.of_onnx(mlp_onnx(tmp_path / "mlp.onnx"))
    inputs = inputs_with(None, 4)

    # execute
    feeds = inputs.fidelity_feeds(specs, 3)

    # assert
    assert len(feeds) == 3 and inputs.fidelity_is_synthetic
    assert all(np.array_equal(a["x"], b["x"]) for a, b in zip(feeds, inputs.feeds(specs, 3), strict=True))
    assert "synthetic" in inputs.describe_fidelity_data(3)


def test_a_single_real_sample_serves_both_and_the_description_says_so(tmp_path):
    # setup
    specs = FeedSpecs.of_onnx(mlp_onnx(tmp_path / "mlp.onnx"))
    np.savez(tmp_path / "one.npz", x=np.ones((1, 1, 16), np.float32))
    inputs = inputs_with(tmp_path / "one.npz", 8)

    # execute
    calibration, evaluation = inputs.calibration_samples(specs), inputs.fidelity_feeds(specs, 8)

    # assert
    assert len(calibration) == len(evaluation) == 1
    assert "not kept apart" in inputs.describe_fidelity_data(8)
