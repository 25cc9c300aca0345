from PySide6.QtWidgets import QFileDialog

from engine.optimize.recipe import Recipe
from tests.conftest import SAMPLE_CNN
from tests.studio.ui.conftest import JOB_TIMEOUT_MS, error_dialogs, idle


def _open_cnn(qtbot, window, monkeypatch) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(SAMPLE_CNN), ""))
    window.actions["open"].trigger()
    qtbot.waitUntil(lambda: window.state.model.handle.name == "sample_cnn.onnx" and idle(window),
                    timeout=JOB_TIMEOUT_MS)
    window.show_page("Optimize")


def _choose(combo, value) -> None:
    combo.setCurrentIndex(combo.findData(value))


def test_options_that_cannot_apply_are_disabled_with_the_reason(qtbot, window, monkeypatch):
    _open_cnn(qtbot, window, monkeypatch)
    page = window.optimize_page
    pruning = page.form.selector("pruning")
    structured = pruning.model().item(pruning.findData("structured"))
    assert not structured.isEnabled() and "no PyTorch module" in structured.toolTip()
    assert not page.form.selector("low_rank").isEnabled()
    _choose(page.form.selector("quantization"), "fp16")
    assert "slower than FP32" in page.expectations.text()


def test_knobs_the_chosen_pass_does_not_read_are_greyed_out(qtbot, window, monkeypatch):
    # setup
    _open_cnn(qtbot, window, monkeypatch)
    form = window.optimize_page.form

    # execute
    _choose(form.selector("quantization"), "dynamic_int8")

    # assert
    assert form.editor("quantization", "per_channel").isEnabled()
    assert not form.editor("quantization", "calibration_method").isEnabled()  # dynamic INT8 does not calibrate
    _choose(form.selector("quantization"), "auto")
    assert form.editor("quantization", "auto_seconds_per_candidate").isEnabled()
    assert not form.editor("quantization", "per_channel").isEnabled()  # auto tries both itself


def test_set_a_recipe_and_optimize(qtbot, window, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(tmp_path / "cache"))
    window.state.update_run_settings(compare_seconds=0.1)
    _open_cnn(qtbot, window, monkeypatch)
    page = window.optimize_page
    _choose(page.form.selector("quantization"), "static_int8")
    page.form.editor("quantization", "per_channel").setChecked(True)
    page.form.editor("calibration", "samples").setValue(4)
    assert page.recipe() == Recipe.from_dict({**Recipe().to_dict(), "quantization": {
        **Recipe().to_dict()["quantization"], "method": "static_int8", "per_channel": True},
        "calibration": {"source": None, "samples": 4}})
    page.optimize_button.click()
    qtbot.waitUntil(lambda: idle(window) and "optimize" in window.state.jobs.latest, timeout=JOB_TIMEOUT_MS)
    assert not error_dialogs()
    assert page.fidelity.rowCount() == 1 and float(page.fidelity.item(0, 2).text()) > 0.99
    assert "Optimized" in page.summary.text() and "on 32 synthetic inputs" in page.fidelity_title.text()
    assert "written to" in page.summary.text() and page.open_button.isEnabled()
    page.open_button.click()
    qtbot.waitUntil(lambda: window.state.model.handle.name.startswith("sample_cnn-") and idle(window),
                    timeout=JOB_TIMEOUT_MS)


def test_cancel_in_the_middle_writes_nothing(qtbot, window, monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(tmp_path / "cache"))
    _open_cnn(qtbot, window, monkeypatch)
    page = window.optimize_page
    _choose(page.form.selector("quantization"), "auto")
    progress = []
    window.state.jobs.progressed.connect(lambda job: job.kind == "optimize" and progress.append(job.fraction))
    page.optimize_button.click()
    qtbot.waitUntil(lambda: bool(progress), timeout=JOB_TIMEOUT_MS)
    page.cancel_button.click()
    qtbot.waitUntil(lambda: idle(window), timeout=JOB_TIMEOUT_MS)
    assert window.state.status == "Optimization cancelled: nothing written"
    assert not error_dialogs() and not page.open_button.isEnabled()
    assert page.optimize_button.isEnabled()


def test_a_failed_optimization_is_explained_and_the_app_keeps_working(qtbot, window, monkeypatch):
    from engine.errors import OptimizationError
    from studio import usecases
    def fails(request, **kwargs):
        raise OptimizationError("static INT8 calibration found no activations to observe")

    monkeypatch.setattr(usecases, "optimize_model", fails)
    window.optimize_page.optimize_button.click()
    qtbot.waitUntil(lambda: bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)
    assert "no activations to observe" in error_dialogs()[0].text()
    assert window.state.status == "Optimization failed" and window.optimize_page.optimize_button.isEnabled()


def _report(tmp_path, model, recipe: dict):
    from engine.model.inputs import InputRequest
    from studio import usecases

    return usecases.optimize_model(usecases.OptimizeRequest(
        model=str(model), recipe=Recipe.from_dict(recipe), output=str(tmp_path / "out.onnx"),
        inputs=InputRequest(), compare_seconds=0, save=False))


def test_a_result_below_its_budget_is_shown_rejected_and_cannot_be_opened_or_exported(qtbot, tmp_path, monkeypatch):
    # setup
    from studio.ui.pages.optimize_page import OptimizePage
    from tests.conftest import linear_onnx

    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(tmp_path / "cache"))
    report = _report(tmp_path, linear_onnx(tmp_path / "m.onnx", features=64),
                     {"quantization": {"method": "dynamic_int8"}, "budget": {"max_relative_error": 1e-7}})
    page = OptimizePage()
    qtbot.addWidget(page)

    # execute
    page.show_result(report)

    # assert
    summary = page.summary.text()
    assert "Rejected: below budget" in summary and "Optimized" not in summary
    assert "relative error" in summary and "Nothing written and nothing saved" in summary
    assert not page.open_button.isEnabled() and not page.export_button.isEnabled()
    assert page.fidelity_title.text() == "Fidelity against the original, on 32 synthetic inputs"
    assert page.fidelity.item(0, 1).text() == "logits" and "top-1 agree" in page.fidelity.item(0, 6).text()


def test_outputs_that_are_zero_on_the_inputs_show_no_figure_and_the_reason(qtbot, tmp_path, monkeypatch):
    # setup: y = 1e-9 * (x W + b)
    from studio.ui.pages.optimize_page import OptimizePage
    from tests.conftest import linear_onnx
    from tests.studio.cli.test_optimize import scaled_onnx

    monkeypatch.setenv("AUTOGLM_STUDIO_CACHE", str(tmp_path / "cache"))
    model = scaled_onnx(linear_onnx(tmp_path / "m.onnx"), tmp_path / "tiny.onnx", 1e-9)
    report = _report(tmp_path, model, {"graph": {"level": "basic"}})
    page = OptimizePage()
    qtbot.addWidget(page)

    # execute
    page.show_result(report)

    # assert
    assert "Rejected: not judged on these inputs" in page.summary.text()
    assert page.fidelity.item(0, 2).text() == "–"
    assert page.fidelity.item(0, 6).text().startswith("not measurable on these inputs: the original model's outputs")
