"""The model card marks guessed dims before any run, lets the user set them, and recounts MACs (issue 13)."""

import onnx
from onnx import TensorProto, helper
from PySide6.QtWidgets import QLabel, QSpinBox

from tests.studio.ui.conftest import JOB_TIMEOUT_MS, idle


def matmul_model(tmp_path):
    """features (-1 × ? × 8) @ W (8 × 4): the middle dim has no role a tool could know, and MACs grow with it."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [8, 4], [0.5] * 32)
    graph = helper.make_graph([helper.make_node("MatMul", ["features", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, [-1, "?", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, "?", 4])], [weight])
    path = tmp_path / "features.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def open_and_wait(qtbot, window, path):
    window.workflows.open_model(str(path))
    qtbot.waitUntil(lambda: window.state.model is not None and window.state.model.handle.name == path.name
                    and idle(window) and window.model_page.macs.text() != "counting…", timeout=JOB_TIMEOUT_MS)


def test_a_guessed_dim_is_marked_and_setting_it_recounts_the_macs(qtbot, window, tmp_path):
    # setup
    open_and_wait(qtbot, window, matmul_model(tmp_path))
    page = window.model_page
    box = page.findChild(QSpinBox, "dim_features[1]")
    origin = page.findChild(QLabel, "origin_features[1]")
    # assert: before any run, the guess is on the card
    assert box is not None and box.value() == 32
    assert origin.property("guessed") is True and "guessed" in origin.text()
    assert page.findChild(QSpinBox, "dim_features[0]") is None  # the batch is sized in Run settings
    before = page.macs.text()
    assert before.startswith("1,024 at features 1×32×8")  # 32 rows × 8 × 4
    # execute
    box.setValue(64)
    qtbot.waitUntil(lambda: idle(window) and page.macs.text() != before, timeout=JOB_TIMEOUT_MS)
    # assert
    assert "features 1×64×8" in page.macs.text()
    assert origin.property("guessed") is False and "set by you" in origin.text()
    assert dict(window.state.model.inputs.dims) == {"features[1]": 64}
