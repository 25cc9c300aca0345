"""Odd files and odd exporter output are one line and exit 2 (issue 14): external-data fields that are not byte
counts or hold a NUL, a file name that is not UTF-8, a .pt2 without its weights (torch's own log is not printed)."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from studio.cli.main import main
from tests.conftest import REPO, SAMPLE_CNN


def external_weights_model(path, **fields):
    """y = x @ W, W (4×3) in w.bin beside the model, with the external-data fields overridden by `fields`."""
    weight = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in {"location": "w.bin", **fields}.items():
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    (path.parent / "w.bin").write_bytes(np.ones((4, 3), np.float32).tobytes())
    return path


@pytest.mark.parametrize(("fields", "message"), [
    ({"offset": "abc"}, "external-data offset 'abc' is not a byte count"),
    ({"length": "-5"}, "external-data length '-5' is not a byte count"),
    ({"location": "w\x00.bin"}, "names an external data file with a NUL byte"),
])
def test_odd_external_data_fields_are_one_line(tmp_path, capsys, fields, message):
    model = external_weights_model(tmp_path / "m.onnx", **fields)
    assert main(["inspect", str(model)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_file_name_that_is_not_utf8_runs_and_prints(tmp_path, capsys):
    model = os.fsencode(tmp_path) + b"/caf\xe9.onnx"
    with open(SAMPLE_CNN, "rb") as source, open(model, "wb") as target:
        target.write(source.read())
    assert main(["inspect", os.fsdecode(model)]) == 0
    assert "caf" in capsys.readouterr().out


def test_a_pt2_without_its_weights_is_one_line_without_torch_s_log(tmp_path):
    path = tmp_path / "broken.pt2"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/archive_format", "pt2")
    done = subprocess.run([sys.executable, "-m", "studio", "inspect", str(path)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "damaged torch.export file (" in done.stderr and "Traceback" not in done.stderr
