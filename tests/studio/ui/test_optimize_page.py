from engine.optimize.recipe import Recipe
from tests.conftest import SAMPLE_CNN
from tests.studio.ui.conftest import JOB_TIMEOUT_MS, error_dialogs


def _open_cnn(qtbot, window) -> None:
    window.open_model(str(SAMPLE_CNN))
    qtbot.waitUntil(lambda: window.handle.name == "sample_cnn.onnx" and not window.jobs, timeout=JOB_TIMEOUT_MS)


def test_options_that_cannot_apply_are_disabled_with_the_reason(qtbot, window):
    _open_cnn(qtbot, window)
    page = window.optimize_page
    structured = page.pruning.model().item(page.pruning.findData("structured"))
    assert not structured.isEnabled() and "no PyTorch module" in structured.toolTip()
    assert not page.low_rank.isEnabled()
    page.quantization.setCurrentIndex(page.quantization.findData("fp16"))
    assert "slower than FP32" in page.expectations.text()


def test_set_a_recipe_and_optimize(qtbot, window, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(tmp_path / "cache"))
    window.compare_seconds = 0.1
    _open_cnn(qtbot, window)
    page = window.optimize_page
    page.quantization.setCurrentIndex(page.quantization.findData("static_int8"))
    page.per_channel.setChecked(True)
    page.calibration_samples.setValue(4)
    assert page.recipe() == Recipe.from_dict({**Recipe().to_dict(), "quantization": {
        **Recipe().to_dict()["quantization"], "method": "static_int8", "per_channel": True},
        "calibration": {"source": None, "samples": 4}})
    window.start_optimize()
    qtbot.waitUntil(lambda: window.optimize_job is None and not window.jobs, timeout=JOB_TIMEOUT_MS)
    assert not error_dialogs()
    assert page.fidelity.rowCount() == 1 and float(page.fidelity.item(0, 1).text()) > 0.99
    assert "written to" in page.summary.text() and page.open_button.isEnabled()
    page.open_button.click()
    qtbot.waitUntil(lambda: window.handle.name.startswith("sample_cnn-") and not window.jobs, timeout=JOB_TIMEOUT_MS)


def test_cancel_in_the_middle_writes_nothing(qtbot, window, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(tmp_path / "cache"))
    _open_cnn(qtbot, window)
    page = window.optimize_page
    page.quantization.setCurrentIndex(page.quantization.findData("auto"))
    progress = []
    window.start_optimize()
    window.optimize_job.progressed.connect(lambda fraction, message: progress.append(fraction))
    qtbot.waitUntil(lambda: bool(progress), timeout=JOB_TIMEOUT_MS)
    page.cancel_button.click()
    qtbot.waitUntil(lambda: window.optimize_job is None and not window.jobs, timeout=JOB_TIMEOUT_MS)
    assert window.state.text() == "Optimization cancelled: nothing written"
    assert not error_dialogs() and not page.open_button.isEnabled()
    assert page.optimize_button.isEnabled()


def test_a_failed_optimization_is_explained_and_the_app_keeps_working(qtbot, window, monkeypatch):
    from engine.errors import OptimizationError
    from studio import usecases
    def fails(request, **kwargs):
        raise OptimizationError("static INT8 calibration found no activations to observe")

    monkeypatch.setattr(usecases, "optimize_model", fails)
    window.start_optimize()
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
    assert "no activations to observe" in error_dialogs()[0].text()
    assert window.state.text() == "Optimization failed" and window.optimize_page.optimize_button.isEnabled()
