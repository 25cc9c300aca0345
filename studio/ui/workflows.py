"""What the studio's cross-page actions do: open a model, run, stop, optimize, export, compare, open a saved run.

Each one checks the state, starts a use case (through the `studio.usecases` facade) as a job, and records what
happened in the state; the pages that show the outcome subscribe to it. Settings a user got wrong are explained
in the error dialog before any job starts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from engine.errors import InputError
from studio import usecases
from studio.ui.job_runner import JobRunner
from studio.ui.state import AppState
from studio.ui.widgets.error_dialog import show_error

MODEL_FILES = "Models (*.onnx *.pt *.pt2 *.pth *.ts);;All files (*)"
COMPARABLE_RUNS = range(2, 9)

if TYPE_CHECKING:
    from engine.optimize.recipe import Recipe


class Workflows:
    def __init__(self, state: AppState, runner: JobRunner, window: QWidget):
        self.state = state
        self.runner = runner
        self.window = window
        self._macs_stale = False  # the shapes changed while a count ran: count again when it ends
        self._counted_batch = state.run_settings.batch
        state.inputs_changed.connect(lambda model: self.count_macs())
        state.run_settings_changed.connect(self._batch_may_have_changed)

    # -- model -----------------------------------------------------------------------------------------------
    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open model", "", MODEL_FILES)
        if path:
            self.open_model(path)

    def open_model(self, location: str) -> None:
        self.state.announce(f"Opening {Path(location).name}…")
        self.runner.start("open", lambda cancel, progress: usecases.open_model(location), self._model_opened)

    def _model_opened(self, handle) -> None:
        state = self.state
        state.open(handle)
        state.announce(f"Opened {handle.name}")
        device = state.run_settings.device
        self.count_macs()
        self.runner.start("options", lambda cancel, progress: usecases.optimization_options(handle, device),
                          show_progress=False)

    def count_macs(self) -> None:
        """Counts the open model's MACs at the shapes a run would use now; one count at a time, the last one wins."""
        state = self.state
        if state.model is None:
            return
        if state.jobs.is_running("MACs"):
            self._macs_stale = True
            return
        self._macs_stale = False
        handle, self._counted_batch = state.model.handle, state.run_settings.batch
        try:
            inputs, problem = state.model.input_request(self._counted_batch), ""
        except InputError as error:  # a half-typed shape
            inputs, problem = None, str(error)

        def count(cancel, progress) -> str:
            if inputs is None:
                return f"unknown until the shapes are complete: {problem}"
            try:
                return usecases.model_macs(handle, inputs)
            except InputError as error:  # shapes the model refuses: the card says so, no dialog per keystroke
                return f"unknown at these shapes: {error}"

        self.runner.start("MACs", count, lambda result: self._macs_stale and self.count_macs(),
                          show_progress=False)

    def _batch_may_have_changed(self, settings) -> None:
        if settings.batch != self._counted_batch:
            self.count_macs()

    def find_devices(self) -> None:
        self.runner.start("devices", lambda cancel, progress: usecases.list_devices(), self.state.set_devices,
                          show_progress=False)

    # -- run -------------------------------------------------------------------------------------------------
    def run_benchmark(self) -> None:
        state = self.state
        if state.model is None or state.jobs.is_running("run"):
            return
        try:
            request = state.bench_request()
        except Exception as error:  # bad settings (a malformed shape) get the same dialog as any failure
            show_error(self.window, "Run settings", " ".join(str(error).split()))
            return
        feed = usecases.LiveFeed()
        self.runner.start("run", lambda cancel, progress: usecases.benchmark_model(
            request, cancel=cancel, progress=progress, live=feed), self._run_done,
            lambda message: state.announce("Run failed"), live=feed,
            message=f"Running {state.model.handle.name} on {request.device}…")

    def _run_done(self, report: usecases.BenchReport | usecases.ScenarioReport) -> None:
        if report.save_error:
            show_error(self.window, "Run not saved", f"The run was measured but not saved: {report.save_error}",
                       f"It was written to {report.unsaved_export}; save it later with: autoglm-studio db "
                       f"import-unsaved {report.unsaved_export}" if report.unsaved_export else "")
        self.state.announce(f"Run {report.result.status}")

    def stop_run(self) -> None:
        if self.state.jobs.cancel("run"):
            self.state.announce("Stopping…")

    # -- optimize --------------------------------------------------------------------------------------------
    def optimize(self, recipe: Callable[[], Recipe]) -> None:
        """Optimizes the open model with the recipe the form holds (`recipe()` raises on a rejected setting)."""
        state = self.state
        if state.model is None or state.jobs.is_running("optimize"):
            return
        try:
            request = state.optimize_request(recipe())
        except Exception as error:  # a recipe the engine rejects gets the same dialog as any failure
            show_error(self.window, "Optimization settings", " ".join(str(error).split()))
            return
        job = self.runner.start("optimize", lambda cancel, progress: usecases.optimize_model(
            request, cancel=cancel, progress=progress),
            lambda report: state.announce("Optimized" if report.result.output_path else "Accuracy budget not met"),
            lambda message: state.announce("Optimization cancelled: nothing written" if job.cancel.is_set()
                                           else "Optimization failed"))

    # -- export ----------------------------------------------------------------------------------------------
    def export(self, **source) -> None:
        """Asks where, then writes the bundle of a model, a saved run or an optimized artifact."""
        model = self.state.model
        name = f"{model.handle.path.stem}-bundle" if model else "bundle"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export deployment bundle (a new folder)", name)
        if path:
            self.export_to(path, **source)

    def export_open_model(self) -> None:
        if self.state.model is not None:
            self.export(model=self.state.model.location)

    def export_to(self, path: str, **source) -> None:
        force = False
        if Path(path).exists():
            answer = QMessageBox.question(self.window, "Replace bundle?", f"{path} exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            force = True
        request = usecases.ExportRequest(output=path, force=force, db_url=self.state.db_url, **source)
        self.state.announce(f"Exporting to {path}…")
        self.runner.start("export", lambda cancel, progress: usecases.export_deployment_bundle(
            request, cancel=cancel, progress=progress), self._exported)

    def _exported(self, bundle) -> None:
        self.state.announce(f"Exported {bundle.path}")
        box = QMessageBox(QMessageBox.Icon.Information, "Export finished",
                          f"The bundle is in {bundle.path} ({bundle.size_bytes / 1e6:.2f} MB, {len(bundle.files)} files).",
                          QMessageBox.StandardButton.Close, self.window)
        box.setObjectName("exportDone")
        show = box.addButton("Show in folder", QMessageBox.ButtonRole.ActionRole)
        show.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(bundle.path).parent))))
        box.setModal(False)
        box.show()

    # -- saved runs ------------------------------------------------------------------------------------------
    def compare(self, run_ids: list[int] | tuple[int, ...]) -> None:
        if len(run_ids) not in COMPARABLE_RUNS:
            QMessageBox.information(self.window, "Compare runs", "Select 2 to 8 runs (Ctrl+click) to compare them.")
            return
        url, ids = self.state.db_url, sorted(run_ids)
        self.runner.start("compare", lambda cancel, progress: usecases.compare_with_samples(url, ids),
                          message=f"Comparing runs {', '.join(map(str, ids))}…")

    def compare_selected(self) -> None:
        self.compare(self.state.selected_runs)

    def open_saved_run(self, run_id: int) -> None:
        url = self.state.db_url
        self.runner.start("open run", lambda cancel, progress: usecases.load_run(url, run_id, telemetry=True))
