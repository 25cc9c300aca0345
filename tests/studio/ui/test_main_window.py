"""The main window driven as a user drives it: actions by id, shortcuts, buttons, dialogs answered."""

import os

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QSpinBox

from studio import usecases
from tests.conftest import SAMPLE_CNN
from tests.studio.ui.conftest import (
    JOB_TIMEOUT_MS,
    error_dialogs,
    fast_run_settings,
    idle,
)


def _run(qtbot, main) -> None:
    main.actions["run"].trigger()
    assert main.state.jobs.is_running("run")
    qtbot.waitUntil(lambda: idle(main), timeout=JOB_TIMEOUT_MS)


def _open_with_the_file_dialog(qtbot, main, monkeypatch, path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(path), ""))
    main.actions["open"].trigger()


def drawn(curve):
    """The points handed to a curve. Not getData(): with clip-to-view that gives only the points inside the view
    range as last painted, which lags the data until the next paint on a loaded machine."""
    return curve.xData, curve.yData


def _click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _select_all_runs(qtbot, main, count: int) -> None:
    qtbot.waitUntil(lambda: main.history.table.rowCount() == count, timeout=JOB_TIMEOUT_MS)
    main.show_page("History")
    main.history.table.setFocus()
    qtbot.keyClick(main.history.table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)


def _name(main) -> str:
    return main.state.model.handle.name


def test_starts_on_the_sample_model(window):
    assert _name(window) == "sample_transformer.onnx"
    assert window.windowTitle().startswith("sample_transformer.onnx")
    assert window.model_page.title.text() == "sample_transformer.onnx"
    assert window.model_page.io_table.rowCount() == 3
    assert window.model_page.findChild(QSpinBox, "dim_sequence") is not None
    assert window.actions["run"].isEnabled() and not window.actions["stop"].isEnabled()
    assert window.state.run_settings.device == "cpu"
    assert window.model_page.macs.text().startswith("41.9 M at input_ids 1×128")


def test_open_by_drag_and_drop(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(SAMPLE_CNN))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)  # Qt delivers drops only from a real drag, which offscreen tests cannot start
    qtbot.waitUntil(lambda: _name(window) == "sample_cnn.onnx" and idle(window), timeout=JOB_TIMEOUT_MS)
    assert window.settings.value("model/recent")[0].endswith("sample_cnn.onnx")


def test_bad_file_shows_a_dialog_and_the_app_keeps_working(qtbot, window, tmp_path, monkeypatch):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(os.urandom(512))
    _open_with_the_file_dialog(qtbot, window, monkeypatch, broken)
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
    dialog = error_dialogs()[0]
    assert "not a readable ONNX file" in dialog.text() and "Traceback" in dialog.detailedText()
    assert _name(window) == "sample_transformer.onnx"  # the open model is untouched
    _open_with_the_file_dialog(qtbot, window, monkeypatch, SAMPLE_CNN)
    qtbot.waitUntil(lambda: _name(window) == "sample_cnn.onnx", timeout=JOB_TIMEOUT_MS)


def test_wrong_shape_in_inputs_file_is_explained(qtbot, window, tmp_path):
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, input_ids=np.zeros((1, 8), np.int32), attention_mask=np.ones((1, 8), np.int64))
    window.model_page.data_path.setText(str(inputs))
    window.model_page.from_file.setChecked(True)
    fast_run_settings(window)
    _run(qtbot, window)
    assert "the file holds int32, the model expects int64" in error_dialogs()[0].text()
    assert window.actions["run"].isEnabled()


def test_a_malformed_shape_is_explained_before_any_run(qtbot, window, monkeypatch, tmp_path):
    # setup: a TorchScript-like model records no shapes; the card asks for one
    _open_with_the_file_dialog(qtbot, window, monkeypatch, SAMPLE_CNN)
    qtbot.waitUntil(lambda: _name(window) == "sample_cnn.onnx" and idle(window), timeout=JOB_TIMEOUT_MS)
    window.state.choose_inputs(window.state.model.inputs.__class__(shapes={"input": "1xq"}))

    # execute
    window.actions["run"].trigger()

    # assert
    assert not window.state.jobs.is_running("run") and "bad dims '1xq'" in error_dialogs()[0].text()


def test_wrong_runtime_for_the_model_is_explained(qtbot, window):
    fast_run_settings(window)
    window.run_settings.backend.setCurrentText("torch")
    _run(qtbot, window)
    assert "use --backend onnxruntime" in error_dialogs()[0].text()


def test_a_run_streams_into_the_plots_and_lands_in_history(qtbot, window):
    fast_run_settings(window, iterations=300)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Run's shortcut
    assert window.state.jobs.is_running("run") and window.stack.currentWidget() is window.dashboard
    qtbot.waitUntil(lambda: idle(window), timeout=JOB_TIMEOUT_MS)
    x, y = drawn(window.dashboard.latency_curve)
    assert x is not None and len(y) >= 300
    assert window.dashboard.tiles["p50"].value.text().endswith("ms")
    assert window.dashboard.tiles["power"].value.text() in ("unavailable",) or "W" in window.dashboard.tiles["power"].value.text()
    assert "saved as run 1" in window.dashboard.status.text()
    qtbot.waitUntil(lambda: window.history.table.rowCount() == 1, timeout=JOB_TIMEOUT_MS)
    assert window.history.table.item(0, 2).text() == "completed"
    assert not window.dashboard.timer.isActive()
    assert window.status_line.text() == "Run completed" and window.state.jobs.latest["run"].run_id == 1


def test_stop_in_the_middle_saves_the_run_as_cancelled(qtbot, window):
    fast_run_settings(window, iterations=10_000_000, duration_s=600)
    window.actions["run"].trigger()
    qtbot.waitUntil(lambda: len(window.dashboard.feed.samples) > 20, timeout=JOB_TIMEOUT_MS)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # Stop's shortcut
    qtbot.waitUntil(lambda: idle(window), timeout=JOB_TIMEOUT_MS)
    run = usecases.load_run(None, 1)
    assert run.record.status == "cancelled" and len(run.latency) > 20


def test_compare_two_runs_and_export(qtbot, window, tmp_path, monkeypatch):
    fast_run_settings(window, iterations=100)
    _run(qtbot, window)
    _run(qtbot, window)
    _select_all_runs(qtbot, window, 2)
    window.actions["compare"].trigger()
    qtbot.waitUntil(lambda: window.compare_page.view is not None, timeout=JOB_TIMEOUT_MS)
    assert window.stack.currentWidget() is window.compare_page
    rows = window.compare_page.rows()
    assert rows[0] == ["statistic", "run 1", "run 2"]  # the earliest run is the baseline
    assert any(row[0] == "median ratio (95% CI)" for row in rows)
    for kind, button in (("csv", window.compare_page.export_csv), ("html", window.compare_page.export_html)):
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, k=kind, **kwargs: (str(tmp_path / f"cmp.{k}"), ""))
        _click(qtbot, button)
    assert (tmp_path / "cmp.csv").read_text().startswith("statistic,")
    assert "data:image/svg+xml" in (tmp_path / "cmp.html").read_text()  # CDF and histogram drawn inline


def test_compare_needs_two_to_eight_runs(qtbot, window, monkeypatch):
    # setup
    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: told.append(text))

    # execute: nothing selected in History
    _click(qtbot, window.history.buttons["Compare selected"])

    # assert
    assert told == ["Select 2 to 8 runs (Ctrl+click) to compare them."] and idle(window)


def test_open_a_saved_run(qtbot, window):
    fast_run_settings(window, iterations=120)
    _run(qtbot, window)
    _select_all_runs(qtbot, window, 1)
    _click(qtbot, window.history.buttons["Open"])
    qtbot.waitUntil(lambda: "Saved run 1" in window.dashboard.status.text() and idle(window), timeout=JOB_TIMEOUT_MS)
    assert len(drawn(window.dashboard.latency_curve)[1]) >= 120
    assert window.stack.currentWidget() is window.dashboard


def test_corrupt_database_is_explained(qtbot, window, private_database):
    private_database.write_bytes(os.urandom(4096))
    _click(qtbot, window.history.refresh_button)
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
    assert "damaged or is not a database" in error_dialogs()[0].text()


def test_closing_during_a_run_stops_and_saves_it(qtbot, window, monkeypatch):
    fast_run_settings(window, iterations=10_000_000, duration_s=600)
    window.actions["run"].trigger()
    qtbot.waitUntil(lambda: len(window.dashboard.feed.samples) > 20, timeout=JOB_TIMEOUT_MS)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    assert window.close()
    assert idle(window)
    assert usecases.load_run(None, 1).record.status == "cancelled"


def test_export_from_the_gui_writes_a_bundle(qtbot, window, tmp_path, monkeypatch):
    target = tmp_path / "bundle"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    window.actions["export"].trigger()
    qtbot.waitUntil(lambda: idle(window), timeout=JOB_TIMEOUT_MS)
    assert (target / "manifest.json").exists() and (target / "predict.py").exists()
    done = [w for w in QApplication.topLevelWidgets() if w.objectName() == "exportDone" and w.isVisible()]
    assert done and str(target) in done[0].text()
    assert any(button.text() == "Show in folder" for button in done[0].buttons())


def test_export_a_run_from_history(qtbot, window, tmp_path, monkeypatch):
    fast_run_settings(window, iterations=30)
    _run(qtbot, window)
    _select_all_runs(qtbot, window, 1)
    target = tmp_path / "run-bundle"
    target.mkdir()  # exists: the user is asked before it is replaced
    (target / "old.txt").write_text("x")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.No)
    _click(qtbot, window.history.buttons["Export…"])
    assert (target / "old.txt").exists() and idle(window)


def test_a_loadgen_scenario_from_run_settings(qtbot, window):
    fast_run_settings(window, iterations=40)
    window.run_settings.scenario.setCurrentIndex(window.run_settings.scenario.findData("single-stream"))
    assert not window.run_settings.rate.isEnabled()
    _run(qtbot, window)
    assert window.dashboard.status.text().startswith("single-stream VALID: p90_ms")
    assert len(drawn(window.dashboard.latency_curve)[1]) >= 40


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_theme_menu_recolours_the_plots_and_is_remembered(qtbot, window, theme):
    # execute
    window.actions[f"theme_{theme}"].trigger()

    # assert
    background = window.dashboard.latency.plot.backgroundBrush().color().name()
    assert window.settings.value("view/theme") == theme and window.actions[f"theme_{theme}"].isChecked()
    assert background == ("#1e1f22" if theme == "dark" else QApplication.style().standardPalette().base().color().name())
