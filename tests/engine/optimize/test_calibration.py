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
    assert any("on 4 sample(s)" in note for note in result.steps[-1].notes)  # the 5th is held out for fidelity
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
    assert any("on 2 sample(s)" in note for note in result.steps[-1].notes)  # the 3rd is held out for fidelity


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


def token_model(path):
    """input_ids, attention_mask (batch×sequence, int64) → Gather embedding → × mask → MatMul → hidden."""
    from onnx import TensorProto, helper, numpy_helper

    from tests.engine.optimize.opt_models import _save

    rng = np.random.default_rng(2)
    initializers = [numpy_helper.from_array(rng.standard_normal((16, 8)).astype(np.float32), "embedding"),
                    numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "w"),
                    numpy_helper.from_array(np.array([-1], np.int64), "last")]
    nodes = [helper.make_node("Gather", ["embedding", "input_ids"], ["e"]),
             helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["m", "last"], ["mu"]),
             helper.make_node("Mul", ["e", "mu"], ["masked"]),
             helper.make_node("MatMul", ["masked", "w"], ["hidden"])]
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
              for name in ("input_ids", "attention_mask")]
    outputs = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "sequence", 4])]
    return _save(helper.make_graph(nodes, "tokens", inputs, outputs, initializers), path, 17)


def test_folder_of_images_calibrates_an_image_model(tmp_path):
    # setup
    from PIL import Image

    model = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13))
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(8):
        Image.fromarray(rng.integers(0, 256, (10, 20, 3), dtype=np.uint8)).save(folder / f"{index}.png")

    # execute
    result = optimize(model, static_recipe(folder), SHAPE, tmp_path / "out.onnx")

    # assert
    assert any("on 6 sample(s)" in note for note in result.steps[-1].notes)  # 2 of 8 are held out for fidelity
    assert not result.fidelity.synthetic
    assert result.output_path.is_file()


def test_images_get_the_recipe_normalization_at_the_reference_shape(tmp_path):
    # setup
    from PIL import Image

    from engine.optimize.passes.calibration import load_calibration_samples
    from engine.optimize.settings import CalibrationSettings

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (20, 10), (255, 0, 0)).save(folder / "red.png")
    settings = CalibrationSettings.from_dict({"source": str(folder), "image_mean": [0.5, 0.25, 0],
                                              "image_std": ["0.5"], "channel_order": "bgr"})
    specs = load_model(conv_onnx(tmp_path / "conv.onnx", opset=13)).inputs
    reference = {"image": np.zeros((1, 3, 6, 5), np.float32)}

    # execute
    samples = load_calibration_samples(folder, specs, 8, reference, settings.sample_options())

    # assert
    assert samples[0]["image"].shape == (1, 3, 6, 5)
    np.testing.assert_allclose(samples[0]["image"][0, :, 3, 2], [-1.0, -0.5, 2.0])  # B, G, R


def test_text_file_with_a_tokenizer_calibrates_a_token_model(tmp_path):
    # setup
    from tokenizers import Tokenizer, models, pre_tokenizers

    from engine.optimize.passes.calibration import load_calibration_samples
    from engine.optimize.settings import CalibrationSettings

    tokenizer = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "red": 2, "green": 3, "blue": 4}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    text = tmp_path / "texts.txt"
    text.write_text("red green\nblue\nred blue green\n")
    settings = CalibrationSettings.from_dict({"source": str(text), "tokenizer": str(tmp_path)})
    specs = load_model(token_model(tmp_path / "tokens.onnx")).inputs
    reference = {name: np.zeros((1, 4), np.int64) for name in ("input_ids", "attention_mask")}

    # execute
    samples = load_calibration_samples(text, specs, 8, reference, settings.sample_options())

    # assert
    assert [sample["input_ids"].tolist() for sample in samples] == [[[2, 3, 0, 0]], [[4, 0, 0, 0]], [[2, 4, 3, 0]]]
    assert samples[1]["attention_mask"].tolist() == [[1, 0, 0, 0]]


@pytest.mark.parametrize(("source", "message"), [
    ("texts.txt", r"calibration data .*texts\.txt: a text file needs a tokenizer"),
    ("empty", r"calibration data .*empty: the folder holds no \.npy, \.npz or image files"),
])
def test_text_or_image_sources_that_cannot_be_read_give_a_clear_error(tmp_path, source, message):
    # setup
    from engine.optimize.passes.calibration import load_calibration_samples

    (tmp_path / "texts.txt").write_text("red\n")
    (tmp_path / "empty").mkdir()
    specs = load_model(token_model(tmp_path / "tokens.onnx")).inputs
    reference = {name: np.zeros((1, 4), np.int64) for name in ("input_ids", "attention_mask")}

    # execute / assert
    with pytest.raises(CalibrationDataError, match=message):
        load_calibration_samples(tmp_path / source, specs, 8, reference)


def test_image_normalization_knobs_are_checked():
    # setup
    from engine.errors import RecipeError
    from engine.optimize.settings import CalibrationSettings

    # execute / assert
    with pytest.raises(RecipeError, match="'calibration.image_mean' must hold numbers"):
        CalibrationSettings(image_mean=["red"])
    with pytest.raises(RecipeError, match="'calibration.image_std' must not hold 0"):
        CalibrationSettings(image_std=["0"])
    with pytest.raises(RecipeError, match="'calibration.channel_order' = 'rbg' is not allowed"):
        CalibrationSettings(channel_order="rbg")
    with pytest.raises(RecipeError, match=r"calibration data from a \.txt file needs a tokenizer"):
        CalibrationSettings(source="texts.txt")
