import os

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from studio import usecases
from tests.conftest import SAMPLE_CNN
from tests.studio.ui.conftest import JOB_TIMEOUT_MS, error_dialogs, fast_run_settings


def _run(qtbot, main) -> None:
    main.start_run()
    assert main.run_job is not None
    qtbot.waitUntil(lambda: main.run_job is None and not main.jobs, timeout=JOB_TIMEOUT_MS)


def test_starts_on_the_sample_model(window):
    assert window.handle.name == "sample_transformer.onnx"
    assert window.windowTitle().startswith("sample_transformer.onnx")
    assert window.model_page.title.text() == "sample_transformer.onnx"
    assert window.model_page.io_table.rowCount() == 3
    assert "sequence" in window.model_page._dim_boxes
    assert window.actions["run"].isEnabled() and not window.actions["stop"].isEnabled()
    assert window.run_settings.device_id == "cpu"
    assert window.model_page.macs.text().startswith("41.9 M at input_ids 1×128")


def test_open_by_drag_and_drop(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(SAMPLE_CNN))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.handle.name == "sample_cnn.onnx" and not window.jobs, timeout=JOB_TIMEOUT_MS)
    assert window.settings.value("model/recent")[0].endswith("sample_cnn.onnx")


def test_bad_file_shows_a_dialog_and_the_app_keeps_working(qtbot, window, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(os.urandom(512))
    window.open_model(str(broken))
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
    dialog = error_dialogs()[0]
    assert "not a readable ONNX file" in dialog.text() and "Traceback" in dialog.detailedText()
    assert window.handle.name == "sample_transformer.onnx"  # the open model is untouched
    window.open_model(str(SAMPLE_CNN))
    qtbot.waitUntil(lambda: window.handle.name == "sample_cnn.onnx", timeout=JOB_TIMEOUT_MS)


def test_wrong_shape_in_inputs_file_is_explained(qtbot, window, tmp_path):
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, input_ids=np.zeros((1, 8), np.int32), attention_mask=np.ones((1, 8), np.int64))
    window.model_page.npz_path.setText(str(inputs))
    window.model_page.from_file.setChecked(True)
    fast_run_settings(window)
    _run(qtbot, window)
    assert "the file holds int32, the model expects int64" in error_dialogs()[0].text()
    assert window.actions["run"].isEnabled()


def test_wrong_runtime_for_the_model_is_explained(qtbot, window):
    fast_run_settings(window)
    window.run_settings.backend.setCurrentText("torch")
    _run(qtbot, window)
    assert "use --backend onnxruntime" in error_dialogs()[0].text()


def test_a_run_streams_into_the_plots_and_lands_in_history(qtbot, window):
    fast_run_settings(window, iterations=300)
    _run(qtbot, window)
    x, y = window.dashboard.latency_curve.getData()
    assert x is not None and len(y) >= 300
    assert window.dashboard.tiles["p50"].value.text().endswith("ms")
    assert window.dashboard.tiles["power"].value.text() in ("unavailable",) or "W" in window.dashboard.tiles["power"].value.text()
    assert "saved as run 1" in window.dashboard.status.text()
    qtbot.waitUntil(lambda: window.history.table.rowCount() == 1, timeout=JOB_TIMEOUT_MS)
    assert window.history.table.item(0, 2).text() == "completed"
    assert not window.dashboard.timer.isActive()


def test_stop_in_the_middle_saves_the_run_as_cancelled(qtbot, window):
    fast_run_settings(window, iterations=10_000_000, duration_s=600)
    window.start_run()
    qtbot.waitUntil(lambda: len(window.dashboard.feed.samples) > 20, timeout=JOB_TIMEOUT_MS)
    window.stop_run()
    qtbot.waitUntil(lambda: window.run_job is None and not window.jobs, timeout=JOB_TIMEOUT_MS)
    run = usecases.load_run(None, 1)
    assert run.record.status == "cancelled" and len(run.latency) > 20


def test_compare_two_runs_and_export(qtbot, window, tmp_path):
    fast_run_settings(window, iterations=100)
    _run(qtbot, window)
    _run(qtbot, window)
    qtbot.waitUntil(lambda: window.history.table.rowCount() == 2, timeout=JOB_TIMEOUT_MS)
    window.history.table.selectAll()
    window.history._compare_selected()
    qtbot.waitUntil(lambda: window.compare_page.view is not None, timeout=JOB_TIMEOUT_MS)
    rows = window.compare_page.rows()
    assert rows[0] == ["statistic", "run 1", "run 2"]  # the earliest run is the baseline
    assert any(row[0] == "median ratio (95% CI)" for row in rows)
    window.compare_page.export(str(tmp_path / "cmp.csv"), "csv")
    window.compare_page.export(str(tmp_path / "cmp.html"), "html")
    assert (tmp_path / "cmp.csv").read_text().startswith("statistic,")
    assert "data:image/svg+xml" in (tmp_path / "cmp.html").read_text()  # CDF and histogram drawn inline


def test_open_a_saved_run(qtbot, window):
    fast_run_settings(window, iterations=120)
    _run(qtbot, window)
    window.open_saved_run(1)
    qtbot.waitUntil(lambda: "Saved run 1" in window.dashboard.status.text() and not window.jobs, timeout=JOB_TIMEOUT_MS)
    assert len(window.dashboard.latency_curve.getData()[1]) >= 120


def test_corrupt_database_is_explained(qtbot, window, private_database):
    private_database.write_bytes(os.urandom(4096))
    window.history.refresh()
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
    assert "damaged or is not a database" in error_dialogs()[0].text()


def test_closing_during_a_run_stops_and_saves_it(qtbot, window, monkeypatch):
    fast_run_settings(window, iterations=10_000_000, duration_s=600)
    window.start_run()
    qtbot.waitUntil(lambda: len(window.dashboard.feed.samples) > 20, timeout=JOB_TIMEOUT_MS)
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    assert window.close()
    assert not window.jobs or all(not job.running for job in window.jobs)
    assert usecases.load_run(None, 1).record.status == "cancelled"


def test_export_from_the_gui_writes_a_bundle(qtbot, window, tmp_path):
    target = tmp_path / "bundle"
    window.export_to(str(target), model=str(SAMPLE_CNN))
    qtbot.waitUntil(lambda: not window.jobs, timeout=JOB_TIMEOUT_MS)
    assert (target / "manifest.json").exists() and (target / "predict.py").exists()
    done = [w for w in QApplication.topLevelWidgets() if w.objectName() == "exportDone" and w.isVisible()]
    assert done and str(target) in done[0].text()
    assert any(button.text() == "Show in folder" for button in done[0].buttons())


def test_export_a_run_from_history(qtbot, window, tmp_path, monkeypatch):
    fast_run_settings(window, iterations=30)
    _run(qtbot, window)
    qtbot.waitUntil(lambda: window.history.table.rowCount() == 1, timeout=JOB_TIMEOUT_MS)
    target = tmp_path / "run-bundle"
    target.mkdir()  # exists: the user is asked before it is replaced
    (target / "old.txt").write_text("x")
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.No)
    window.export_to(str(target), run_id=1)
    assert (target / "old.txt").exists() and not window.jobs


def test_a_loadgen_scenario_from_run_settings(qtbot, window):
    fast_run_settings(window, iterations=40)
    window.run_settings.scenario.setCurrentIndex(window.run_settings.scenario.findData("single-stream"))
    assert not window.run_settings.rate.isEnabled()
    _run(qtbot, window)
    assert window.dashboard.status.text().startswith("single-stream VALID: p90_ms")
    assert len(window.dashboard.latency_curve.getData()[1]) >= 40
