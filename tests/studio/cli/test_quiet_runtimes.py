"""Third-party log lines (ONNX Runtime's coloured error line) are shown only with --debug: without it, a failing
model gives our one line and nothing else on stderr (issue 14)."""

import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import REPO


def reshape_that_fails(path):
    """y = reshape(x, [3, 5]) with x of a dynamic length: any other length than 15 fails inside ONNX Runtime."""
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "s"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 5])],
                              [numpy_helper.from_array(np.array([3, 5], np.int64), "s")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _bench(model, *extra) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "studio", "bench", str(model), "--dim", "n=7", "--iterations", "3",
               "--duration", "0", "--warmup", "1", "--no-save", "--telemetry-hz", "0", *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_onnxruntime_log_lines_only_with_debug(tmp_path):
    # setup
    model = reshape_that_fails(tmp_path / "reshape.onnx")

    # execute
    quiet, verbose = _bench(model), _bench(model, "--debug")

    # assert
    assert quiet.returncode == 2 and len(quiet.stderr.strip().splitlines()) == 1, quiet.stderr
    assert "cannot be reshaped" in quiet.stderr and "[E:onnxruntime" not in quiet.stderr
    assert verbose.returncode == 2 and "[E:onnxruntime" in verbose.stderr
