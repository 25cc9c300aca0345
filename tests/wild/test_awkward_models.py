"""Cases the wild corpus lacks, built in tmp_path (tests/wild/awkward_models.py): each opens, resolves its
shapes, runs, and reports true parameter and MAC counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.macs import count_macs
from engine.model.opening import load_model
from studio import usecases
from studio.cli.main import main
from tests.wild import awkward_models as awkward

FAST = ["--warmup", "1", "--iterations", "5", "--duration", "0", "--threads", "1", "--telemetry-hz", "0"]


def resolved_shapes(handle, request: InputRequest = InputRequest()) -> dict[str, tuple[int, ...]]:
    prepared = prepare_inputs(handle.inputs, request, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds)
    return {name: tuple(array.shape) for name, array in prepared.feed.items()}


def bench_json(capsys, tmp_path, model, *options) -> dict:
    code = main(["bench", str(model), "--json", "--db", f"sqlite:///{tmp_path / 'runs.db'}", *FAST, *options])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert document["status"] == "completed" and document["samples"] >= 5
    return document


def test_a_paddle_input_takes_a_non_square_shape(tmp_path, capsys):
    model = awkward.paddle_style_classifier(tmp_path / "paddle.onnx")
    handle = load_model(model)
    assert resolved_shapes(handle, InputRequest(shapes={"x": (1, 3, 48, 192)})) == {"x": (1, 3, 48, 192)}
    document = bench_json(capsys, tmp_path, model, "--shape", "x=1x3x48x192")
    assert document["inputs"]["shapes"] == {"x": [1, 3, 48, 192]}


def test_a_paddle_input_defaults_to_a_real_image_and_takes_a_batch(tmp_path):
    handle = load_model(awkward.paddle_style_classifier(tmp_path / "paddle.onnx"))
    batch, channels, height, width = resolved_shapes(handle)["x"]
    assert (batch, channels) == (1, 3) and height >= 16 and width >= 16
    assert resolved_shapes(handle, InputRequest(batch=4))["x"][0] == 4


def test_an_opset_12_export_runs_and_is_counted(tmp_path, capsys):
    model = awkward.opset12_export(tmp_path / "opset12.onnx")
    handle = load_model(model)
    assert handle.parameter_count >= 32 * 10
    assert count_macs(model, {"x": (2, 32)}).total == 2 * 32 * 10
    bench_json(capsys, tmp_path, model)


def test_an_if_node_counts_the_weights_of_its_branches(tmp_path, capsys):
    model = awkward.branching_model(tmp_path / "branching.onnx")
    assert load_model(model).parameter_count == awkward.BRANCH_PARAMETERS
    bench_json(capsys, tmp_path, model, "--batch", "2")


def test_external_data_is_counted_run_and_bundled(tmp_path, capsys):
    model = awkward.external_data_cnn(tmp_path / "external.onnx")
    handle = load_model(model)
    assert handle.parameter_count == awkward.EXTERNAL_PARAMETERS
    assert len(handle.files) == 2
    assert count_macs(model, {"image": (1, 3, 32, 32)}).total == 8 * 32 * 32 * 27 + 5 * 8
    bench_json(capsys, tmp_path, model)
    bundle = tmp_path / "bundle"
    assert main(["export", str(model), "-o", str(bundle)]) == 0, capsys.readouterr().err
    assert main(["verify-bundle", str(bundle), "--run-predict"]) == 0, capsys.readouterr().err


def test_outputs_of_mixed_dtypes_run_and_optimize(tmp_path, capsys):
    model = awkward.mixed_dtype_outputs(tmp_path / "mixed.onnx")
    bench_json(capsys, tmp_path, model)
    code = main(["optimize", str(model), "-o", str(tmp_path / "mixed_int8.onnx"), "--quantize", "dynamic_int8",
                 "--compare-seconds", "0", "--fidelity-samples", "8", "--no-save"])
    err = capsys.readouterr().err
    assert code in (0, 3), err  # 3: measured and below budget, which is an answer, not a crash
    assert "internal error" not in err


def test_a_scalar_input_stays_a_scalar_from_an_npz(tmp_path, capsys):
    model = awkward.scalar_rate_model(tmp_path / "vad.onnx")
    handle = load_model(model)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, x=np.ones((1, 16), np.float32), sr=np.array(16000))
    prepared = prepare_inputs(handle.inputs, InputRequest(npz=inputs))
    assert prepared.feed["sr"].shape == () and int(prepared.feed["sr"]) == 16000
    assert resolved_shapes(handle)["sr"] == ()
    document = bench_json(capsys, tmp_path, model, "--inputs", str(inputs))
    assert document["inputs"]["shapes"]["sr"] == []


def test_weights_in_constant_nodes_are_parameters(tmp_path, capsys):
    model = awkward.constant_weight_conv(tmp_path / "constant.onnx")
    assert load_model(model).parameter_count == awkward.CONSTANT_PARAMETERS
    report = count_macs(model, {"image": (1, 3, 32, 32)})
    assert report.total == awkward.CONSTANT_MACS and report.unknown == 0
    bench_json(capsys, tmp_path, model)


@pytest.mark.parametrize("batch, sequence", [(1, 16), (2, 48)])
def test_attention_matmuls_are_counted(tmp_path, batch, sequence):
    model = awkward.tiny_bert(tmp_path / "bert.onnx")
    report = count_macs(model, {"input_ids": (batch, sequence)})
    assert report.unknown == 0
    assert report.total == awkward.tiny_bert_macs(batch, sequence)


def test_the_encoder_macs_follow_the_sequence_length(tmp_path, capsys):
    model = awkward.tiny_bert(tmp_path / "bert.onnx")
    handle = load_model(model)
    short = usecases.model_macs(handle, InputRequest(dims={"sequence": 16}))
    long = usecases.model_macs(handle, InputRequest(dims={"sequence": 64}))
    assert short != long and "not counted" not in short + long
    bench_json(capsys, tmp_path, model, "--dim", "sequence=32")
