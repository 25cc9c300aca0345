"""Calibration data from files, checked before calibrating; cancel in the middle of calibration."""

import threading

import numpy as np
import pytest

from engine.errors import CalibrationDataError, OptimizationCancelled
from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from engine.optimize.optimizer import optimize
from engine.optimize.recipe import Recipe
from tests.engine.optimize.opt_models import conv_onnx, mlp_onnx, private_cache  # noqa: F401

SHAPE = InputRequest(dims={"height": 8, "width": 8})


def static_recipe(source, samples=8) -> Recipe:
    return Recipe.from_dict({"quantization": {"method": "static_int8"},
                             "calibration": {"source": str(source), "samples": samples}})


def test_npz_with_samples_on_the_first_axis_is_used(tmp_path):
    # setup
    model = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    data = tmp_path / "calib.npz"
    np.savez(data, image=np.random.default_rng(0).standard_normal((5, 1, 3, 8, 8)).astype(np.float32))

    # execute
    result = optimize(model, static_recipe(data), SHAPE, tmp_path / "out.onnx")

    # assert
    assert any("on 5 sample(s)" in note for note in result.steps[-1].notes)
    assert result.output_path.is_file()


def test_folder_of_npy_files_is_used_for_a_single_input_model(tmp_path):
    # setup
    model = load_model(mlp_onnx(tmp_path / "mlp.onnx"))
    folder = tmp_path / "calib"
    folder.mkdir()
    for index in range(3):
        np.save(folder / f"{index:03d}.npy", np.full((2, 16), index, np.float32))

    # execute
    result = optimize(model, static_recipe(folder), InputRequest(), tmp_path / "out.onnx")

    # assert
    assert any("on 3 sample(s)" in note for note in result.steps[-1].notes)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"pixels": np.zeros((4, 1, 3, 8, 8), np.float32)}, r"keys must be the model's input names \['image'\]; "
                                                        r"missing \['image'\]; unexpected \['pixels'\]"),
    ({"image": np.zeros((4, 1, 4, 8, 8), np.float32)}, r"input 'image' has shape 1×4×8×8; the model expects "
                                                       r"batch×3×height×width \(axis 1 must be 3\)"),
    ({"image": np.zeros((8, 8), np.float32)}, r"has rank 2; the model takes rank 4"),
    ({"image": np.zeros((4, 1, 3, 8, 8), np.float64)}, r"holds float64; the model expects float32"),
])
def test_bad_calibration_data_gives_a_clear_error(tmp_path, arrays, message):
    # setup
    model = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    data = tmp_path / "calib.npz"
    np.savez(data, **arrays)

    # execute
    with pytest.raises(CalibrationDataError, match=message):
        optimize(model, static_recipe(data), SHAPE, tmp_path / "out.onnx")

    # assert
    assert not (tmp_path / "out.onnx").exists()


def test_missing_calibration_source_fails_before_any_work(tmp_path):
    # setup
    model = load_model(mlp_onnx(tmp_path / "mlp.onnx"))
    steps = []

    # execute
    with pytest.raises(CalibrationDataError, match="no such file or folder"):
        optimize(model, static_recipe(tmp_path / "nowhere.npz"), InputRequest(), tmp_path / "out.onnx",
                 progress=lambda fraction, message: steps.append(message))

    # assert
    assert steps == []


def test_cancel_in_the_middle_of_calibration_stops_and_writes_nothing(tmp_path, private_cache):  # noqa: F811
    # setup
    model = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    recipe = Recipe.from_dict({"quantization": {"method": "static_int8"}, "calibration": {"samples": 50}})
    cancel = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(message)
        if "calibration: sample 3/50" in message:
            cancel.set()

    # execute
    with pytest.raises(OptimizationCancelled):
        optimize(model, recipe, SHAPE, tmp_path / "out.onnx", cancel=cancel, progress=progress)

    # assert
    assert not (tmp_path / "out.onnx").exists()
    assert not any("sample 4/50" in message for message in seen)
    assert not list(private_cache.glob(".staging-*"))
    assert len(list(private_cache.glob("*/*/provenance.json"))) == 1  # only the clean-up step finished
