import numpy as np
import pytest

from engine.errors import InputError, ShapeMismatchError
from engine.model.inputs import (
    InputRequest,
    parse_dim_options,
    parse_dims,
    parse_shape_options,
    prepare_inputs,
)
from engine.model.tensors import TensorSpec

TOKENS = (TensorSpec("input_ids", "int64", ("batch", "sequence")), TensorSpec("attention_mask", "int64", ("batch", "sequence")))
IMAGE = (TensorSpec("image", "float32", ("batch", 3, 32, 32)),)


def test_defaults_are_used_and_reported():
    prepared = prepare_inputs(TOKENS, InputRequest())
    assert prepared.feed["input_ids"].shape == (1, 128)
    assert {dim: (c.size, c.origin, c.guessed) for dim, c in prepared.dim_choices.items()} == {
        "batch": (1, "default", False), "sequence": (128, "default", False)}
    assert prepared.batch_size == 1


def test_dims_batch_and_shapes_override_defaults():
    by_dim = prepare_inputs(TOKENS, InputRequest(dims={"sequence": 16}, batch=4))
    by_shape = prepare_inputs(TOKENS, InputRequest(shapes={"input_ids": (2, 8)}))
    assert by_dim.feed["attention_mask"].shape == (4, 16)
    assert {c.origin for c in by_dim.dim_choices.values()} == {"given"}
    assert by_dim.batch_size == 4
    assert by_shape.feed["attention_mask"].shape == (2, 8)


def test_token_ids_masks_and_types_get_safe_values():
    specs = (*TOKENS, TensorSpec("token_type_ids", "int64", ("batch", "sequence")),
             TensorSpec("position_ids", "int64", ("batch", "sequence")), TensorSpec("keep", "bool", ("batch",)))
    feed = prepare_inputs(specs, InputRequest(dims={"sequence": 64}, batch=2), index_bounds={"input_ids": 30}).feed
    assert feed["input_ids"].min() >= 0 and feed["input_ids"].max() < 30
    assert len(np.unique(feed["input_ids"])) > 5
    assert (feed["attention_mask"] == 1).all() and (feed["token_type_ids"] == 0).all()
    assert (feed["position_ids"][1] == np.arange(64)).all()
    assert feed["keep"].dtype == np.bool_


def test_token_ids_without_known_vocabulary_stay_small():
    feed = prepare_inputs(TOKENS, InputRequest()).feed
    assert feed["input_ids"].max() < 100


def test_synthetic_inputs_are_seeded():
    first = prepare_inputs(IMAGE, InputRequest(seed=3)).feed["image"]
    again = prepare_inputs(IMAGE, InputRequest(seed=3)).feed["image"]
    other = prepare_inputs(IMAGE, InputRequest(seed=4)).feed["image"]
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.dtype == np.float32 and abs(float(first.std()) - 1.0) < 0.1


def test_wrong_rank_names_input_expected_and_given():
    with pytest.raises(ShapeMismatchError, match=r"input 'image': expected shape batch×3×32×32, given 1×3×32"):
        prepare_inputs(IMAGE, InputRequest(shapes={"image": (1, 3, 32)}))


def test_wrong_fixed_dim():
    with pytest.raises(ShapeMismatchError, match="axis 2 must be 32"):
        prepare_inputs(IMAGE, InputRequest(shapes={"image": (1, 3, 64, 64)}))


def test_unknown_input_and_dim_names():
    with pytest.raises(InputError, match="no input 'pixels'"):
        prepare_inputs(IMAGE, InputRequest(shapes={"pixels": (1, 3, 32, 32)}))
    with pytest.raises(InputError, match="no symbolic dim 'seq'; its dynamic dims are: batch, sequence"):
        prepare_inputs(TOKENS, InputRequest(dims={"seq": 4}))


def test_conflicting_sizes_for_one_dim():
    with pytest.raises(ShapeMismatchError, match="dim 'batch' is 2 from the shape of 'input_ids' but 4 from the batch size"):
        prepare_inputs(TOKENS, InputRequest(shapes={"input_ids": (2, 8)}, batch=4))


def test_batch_on_a_fixed_batch_model():
    fixed = (TensorSpec("x", "float32", (1, 8)),)
    with pytest.raises(InputError, match="no dynamic batch dimension"):
        prepare_inputs(fixed, InputRequest(batch=4))
    assert prepare_inputs(fixed, InputRequest(batch=1)).feed["x"].shape == (1, 8)


def test_dim_bounds_are_enforced_and_used_as_defaults():
    specs = (TensorSpec("x", "float32", ("s0", 4)),)
    assert prepare_inputs(specs, InputRequest(), dim_bounds={"s0": (2, 64)}).feed["x"].shape == (2, 4)
    with pytest.raises(ShapeMismatchError, match="outside the model's allowed range 2..64"):
        prepare_inputs(specs, InputRequest(dims={"s0": 100}), dim_bounds={"s0": (2, 64)})


def test_unknown_shape_needs_shape_option():
    specs = (TensorSpec("features", "float32", None),)
    with pytest.raises(InputError, match="does not record its shape; give it as features=DIMS"):
        prepare_inputs(specs, InputRequest())
    prepared = prepare_inputs(specs, InputRequest(shapes={"features": (3, 4)}, batch=3))
    assert prepared.feed["features"].shape == (3, 4) and prepared.batch_size == 3


def test_npz_inputs(tmp_path):
    path = tmp_path / "inputs.npz"
    ids = np.arange(12, dtype=np.int64).reshape(3, 4)
    np.savez(path, input_ids=ids, attention_mask=np.ones((3, 4), dtype=np.int64))
    prepared = prepare_inputs(TOKENS, InputRequest(npz=path))
    assert np.array_equal(prepared.feed["input_ids"], ids)
    assert prepared.batch_size == 3 and prepared.source == str(path)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"input_ids": np.zeros((1, 4), np.int64)}, r"missing \['attention_mask'\]"),
        ({"input_ids": np.zeros((1, 4), np.int64), "attention_mask": np.zeros((1, 4), np.int64),
          "labels": np.zeros(1)}, r"unexpected \['labels'\]"),
        ({"input_ids": np.zeros((1, 4), np.int32), "attention_mask": np.zeros((1, 4), np.int64)},
         "input 'input_ids': the file holds int32, the model expects int64"),
        ({"input_ids": np.zeros((1, 4), np.int64), "attention_mask": np.zeros((1, 5), np.int64)},
         "dim 'sequence' is 4 from the file inputs.npz but 5"),
    ],
)
def test_npz_mismatches(tmp_path, arrays, message):
    path = tmp_path / "inputs.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=message):
        prepare_inputs(TOKENS, InputRequest(npz=path))


def test_corrupt_and_missing_npz(tmp_path):
    corrupt = tmp_path / "bad.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a readable .npz"):
        prepare_inputs(TOKENS, InputRequest(npz=corrupt))
    with pytest.raises(InputError, match="no such inputs file"):
        prepare_inputs(TOKENS, InputRequest(npz=tmp_path / "absent.npz"))


def test_npz_with_shape_option_is_refused(tmp_path):
    path = tmp_path / "inputs.npz"
    np.savez(path, image=np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(InputError, match="either an inputs file or shapes"):
        prepare_inputs(IMAGE, InputRequest(npz=path, shapes={"image": (1, 3, 32, 32)}))


def test_option_parsing():
    assert parse_dims("1x3x224x224") == (1, 3, 224, 224)
    assert parse_shape_options(["input_ids=2x16"]) == {"input_ids": (2, 16)}
    assert parse_dim_options(["sequence=256"]) == {"sequence": 256}
    for bad in ("1x0", "axb", "", "1x²", "１x3", "1x" + "9" * 30, "1x2147483648"):
        with pytest.raises(InputError):
            parse_dims(bad)
    with pytest.raises(InputError, match="expected NAME=VALUE"):
        parse_shape_options(["input_ids"])
    for bad in ("-3", "٣", "99999999999"):
        with pytest.raises(InputError, match="whole number from 1 to 2147483647"):
            parse_dim_options([f"sequence={bad}"])
