"""The main window: a left-side workflow (Model, Run settings, Dashboard, History, Compare) over studio.usecases.benchmark."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, qVersion
from PySide6.QtGui import (
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QWidget,
)

from studio import __version__, usecases
from studio.ui.actions import ActionRegistry
from studio.ui.gc_in_gui_thread import GuiThreadGarbageCollector
from studio.ui.jobs import Job
from studio.ui.pages.history_page import HistoryPage
from studio.ui.pages.model_page import ModelPage
from studio.ui.pages.optimize_page import OptimizePage
from studio.ui.pages.run_settings import RunSettingsPage
from studio.ui.widgets.error_dialog import show_error
from studio.ui.widgets.theme import (
    THEMES,
    apply_theme,
    plot_background,
    plot_foreground,
)

APP_TITLE = "Open-AutoGLM Studio"
MAX_RECENT = 8
CLOSE_WAIT_S = 10.0
STARTUP_DELAY_MS = 50  # long enough for the first paint to come first


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings, db_url: str | None = None):
        super().__init__()
        self.settings = settings
        self.db_url = db_url
        self.handle = None
        self.jobs: set[Job] = set()
        self.run_job: Job | None = None
        self.closing = False
        self.garbage_collector = GuiThreadGarbageCollector(self)
        self.setAcceptDrops(True)
        self.setWindowTitle(APP_TITLE)

        self.model_page = ModelPage()
        self.run_settings = RunSettingsPage()
        self.optimize_page = OptimizePage()
        self.optimize_job: Job | None = None
        self.compare_seconds = 1.0  # per model and round, for the optimized model's before/after latency
        self.history = HistoryPage(db_url)
        # The plot pages need pyqtgraph (~0.5 s to import): they are built just after the window first shows.
        self.dashboard = None
        self.compare_page = None
        self.sweep_page = None
        self.layers_view = None
        self.generate_page = None
        self.generate_job: Job | None = None
        self.pages = {"Model": self.model_page, "Run settings": self.run_settings, "Optimize": self.optimize_page,
                      "Dashboard": QLabel("Loading…"), "Generate": QLabel("Loading…"),
                      "History": self.history, "Compare": QLabel("Loading…"), "Sweep": QLabel("Loading…"),
                      "Layers": QLabel("Loading…")}
        self.nav = QListWidget()
        self.nav.addItems(list(self.pages))
        self.nav.setFixedWidth(150)
        self.nav.setStyleSheet("QListWidget::item { padding: 6px 4px; }")
        self.stack = QStackedWidget()
        for page in self.pages.values():
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.addWidget(self.nav)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.actions = ActionRegistry(self, {
            "open": self.choose_model, "run": self.start_run, "stop": self.stop_run,
            "compare": lambda: self.history._compare_selected(), "data_folder": self.open_data_folder,
            "export": lambda: self.export(model=self._model_location()) if self.handle else None,
            "about": self.show_about, "quit": self.close,
        })
        self._build_menus()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.state = QLabel("Ready")
        self.statusBar().addWidget(self.state, 1)
        self.statusBar().addPermanentWidget(self.progress)

        self.model_page.open_requested.connect(self.choose_model)
        self.optimize_page.optimize_requested.connect(self.start_optimize)
        self.optimize_page.cancel_requested.connect(lambda: self.optimize_job and self.optimize_job.stop())
        self.optimize_page.open_optimized.connect(self.open_model)
        self.optimize_page.export_artifact.connect(lambda artifact_id: self.export(artifact_id=artifact_id))
        self.history.export_run.connect(lambda run_id: self.export(run_id=run_id))
        self.history.open_layers.connect(self.show_layers)
        self.history.run_jobs.connect(self.start_job)
        self.history.compare_runs.connect(self._compare)
        self.history.open_run.connect(self.open_saved_run)

        self.run_settings.restore(settings)
        if settings.value("window/geometry") is not None:
            self.restoreGeometry(settings.value("window/geometry"))
        else:
            self.resize(1280, 860)
        self._set_running(False)
        self.nav.setCurrentRow(0)

    # -- start-up --------------------------------------------------------------------------------------------
    def start(self, model: str | None) -> None:
        """Opens `model` (else the last one, else the built-in sample) and discovers devices, off the GUI thread.

        All of it waits for the event loop, so the window paints first: worker threads importing onnx or
        SQLAlchemy would otherwise compete with the first paint for the interpreter.
        """
        last = self.settings.value("model/last")
        chosen = model or (last if last and Path(str(last).split(":")[0]).exists() else usecases.sample_models()["transformer"])
        self.state.setText("Starting…")
        QTimer.singleShot(STARTUP_DELAY_MS, lambda: self._start_jobs(chosen))

    def _start_jobs(self, model: str) -> None:
        self.ensure_plot_pages()
        self.open_model(model)
        self.start_job("devices", lambda cancel, progress: usecases.list_devices(), self.run_settings.set_devices,
                       show_progress=False)
        self.history.refresh()

    def ensure_plot_pages(self) -> None:
        if self.dashboard is not None:
            return
        from studio.ui.pages.compare_page import ComparePage
        from studio.ui.pages.dashboard import Dashboard

        self.dashboard = self._replace_page("Dashboard", Dashboard())
        self.compare_page = self._replace_page("Compare", ComparePage(self.db_url))
        self.compare_page.run_jobs.connect(self.start_job)
        from studio.ui.pages.generate_page import GeneratePage

        self.generate_page = self._replace_page("Generate", GeneratePage())
        self.generate_page.run_requested.connect(self.start_generate)
        self.generate_page.cancel_requested.connect(lambda: self.generate_job and self.generate_job.stop())
        from studio.ui.pages.layers_view import LayersView
        from studio.ui.pages.sweep_page import SweepPage

        self.sweep_page = self._replace_page("Sweep", SweepPage(self.start_job, self._current_model_location, self.db_url))
        self.sweep_page.open_run.connect(self.open_saved_run)
        self.sweep_page.sweep_finished.connect(lambda _: self.history.refresh())
        self.layers_view = self._replace_page("Layers", LayersView(self.start_job, self.db_url))

    def _replace_page(self, name: str, page: QWidget) -> QWidget:
        placeholder = self.pages[name]
        index = self.stack.indexOf(placeholder)
        current = self.stack.currentIndex()
        self.stack.removeWidget(placeholder)
        self.stack.insertWidget(index, page)
        self.stack.setCurrentIndex(current)
        placeholder.deleteLater()
        self.pages[name] = page
        return page

    # -- jobs ------------------------------------------------------------------------------------------------
    def start_job(self, name: str, work, on_success: Callable, on_failure: Callable | None = None,
                  show_progress: bool = True) -> Job:
        job = Job(name, work, self)
        self.jobs.add(job)
        job.succeeded.connect(on_success)
        job.failed.connect(lambda message, details: self._job_failed(job, message, details, on_failure))
        job.finished.connect(lambda: self._job_finished(job))
        if show_progress:
            job.progressed.connect(self._show_progress)
            self.progress.setValue(0)
            self.progress.show()
        job.start()
        return job

    def busy(self) -> bool:
        return any(job.running for job in self.jobs) or bool(self.jobs)

    def _job_finished(self, job: Job) -> None:
        self.jobs.discard(job)
        if not any(j is not self.run_job for j in self.jobs) and self.run_job is None:
            self.progress.hide()

    def _job_failed(self, job: Job, message: str, details: str, on_failure: Callable | None) -> None:
        if on_failure is not None:
            on_failure(message)
        if not job.cancel.is_set():  # stopping is what the user asked for, not an error
            show_error(self, f"{job.name.capitalize()} failed", message, details)

    def _show_progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.state.setText(message)

    # -- model -----------------------------------------------------------------------------------------------
    def choose_model(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", "Models (*.onnx *.pt *.pt2 *.pth *.ts);;All files (*)")
        if path:
            self.open_model(path)

    def open_model(self, location: str) -> None:
        self.state.setText(f"Opening {Path(location).name}…")
        self.start_job("open", lambda cancel, progress: usecases.open_model(location), self._model_opened)

    def _model_opened(self, handle) -> None:
        self.handle = handle
        self.model_page.show_model(handle)
        self.settings.setValue("model/last", str(handle.path))
        recent = [str(handle.path)] + [p for p in (self.settings.value("model/recent") or []) if p != str(handle.path)]
        self.settings.setValue("model/recent", recent[:MAX_RECENT])
        self._fill_recent_menu()
        self._set_running(False)
        self.state.setText(f"Opened {handle.name}")
        inputs = self.model_page.input_request(self.run_settings.batch.value())
        self.start_job("MACs", lambda cancel, progress: usecases.model_macs(handle, inputs), self.model_page.show_macs,
                       lambda message: self.model_page.show_macs(f"unknown: {message}"), show_progress=False)
        device = self.run_settings.device_id
        self.start_job("options", lambda cancel, progress: usecases.optimization_options(handle, device),
                       self.optimize_page.set_options, show_progress=False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_model(urls[0].toLocalFile())
            event.acceptProposedAction()

    # -- run -------------------------------------------------------------------------------------------------
    def start_run(self) -> None:
        if self.handle is None or self.run_job is not None:
            return
        self.ensure_plot_pages()
        try:
            request = usecases.BenchRequest(
                model=self._model_location(),
                backend=self.run_settings.backend_name, device=self.run_settings.device_id,
                options=self.run_settings.backend_options(), settings=self.run_settings.benchmark_settings(),
                inputs=self.model_page.input_request(self.run_settings.batch.value()),
                telemetry_hz=self.run_settings.telemetry_hz.value() or None, db_url=self.db_url,
                scenario=self.run_settings.scenario_settings(),
            )
        except Exception as error:  # bad settings (a malformed shape) get the same dialog as any failure
            show_error(self, "Run settings", " ".join(str(error).split()))
            return
        self.run_settings.save(self.settings)
        feed = usecases.LiveFeed()
        self.dashboard.attach(feed, self.run_settings.batch.value(), f"Running {self.handle.name} on {request.device}…")
        self.nav.setCurrentRow(list(self.pages).index("Dashboard"))
        self.run_job = self.start_job("run", lambda cancel, progress: usecases.benchmark_model(
            request, cancel=cancel, progress=progress, live=feed), self._run_done, self._run_failed)
        self._set_running(True)

    def stop_run(self) -> None:
        if self.run_job is not None:
            self.run_job.stop()
            self.state.setText("Stopping…")

    def _run_done(self, report) -> None:
        result = report.result
        saved = f"saved as run {report.run_id}" if report.run_id else f"NOT saved: {report.save_error}"
        if hasattr(result, "validity"):  # a LoadGen scenario
            headline = ", ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.headline().items())
            reasons = f" ({'; '.join(result.validity.reasons)})" if result.validity.reasons else ""
            self.dashboard.detach(f"{result.settings.scenario} {result.validity.label}{reasons}: {headline}; {saved}")
        else:
            self.dashboard.detach(f"{result.status}: {result.stats.count} iterations, "
                                  f"p50 {result.stats.percentiles_ms['p50'] or 0:.3f} ms; {saved}")
        if report.save_error:
            show_error(self, "Run not saved", f"The run was measured but not saved: {report.save_error}",
                       f"Its samples were written to {report.unsaved_export}" if report.unsaved_export else "")
        self._end_run(f"Run {result.status}")

    def _run_failed(self, message: str) -> None:
        self.dashboard.detach(f"failed: {message}")
        self._end_run("Run failed")

    def _end_run(self, text: str) -> None:
        self.run_job = None
        self._set_running(False)
        self.state.setText(text)
        if not self.closing:
            self.history.refresh()

    def _set_running(self, running: bool) -> None:
        self.actions["run"].setEnabled(not running and self.handle is not None)
        self.actions["stop"].setEnabled(running)
        name = self.handle.name if self.handle else "no model"
        self.setWindowTitle(f"{name} — {APP_TITLE}" + (" [running]" if running else ""))

    # -- optimize --------------------------------------------------------------------------------------------
    def start_optimize(self) -> None:
        if self.handle is None or self.optimize_job is not None:
            return
        try:
            recipe = self.optimize_page.recipe()
            request = usecases.OptimizeRequest(
                model=self._model_location(), recipe=recipe,
                output=str(usecases.default_optimized_path(self.handle, recipe)),
                inputs=self.model_page.input_request(self.run_settings.batch.value()),
                threads=self.run_settings.threads.value() or 1, db_url=self.db_url,
                compare_seconds=self.compare_seconds,
            )
        except Exception as error:  # a recipe the engine rejects gets the same dialog as any failure
            show_error(self, "Optimization settings", " ".join(str(error).split()))
            return
        self.optimize_page.set_busy(True)
        self.optimize_job = self.start_job("optimize", lambda cancel, progress: usecases.optimize_model(
            request, cancel=cancel, progress=progress), self._optimize_done, self._optimize_failed)

    def _optimize_done(self, report) -> None:
        self.optimize_job = None
        self.optimize_page.set_busy(False)
        self.optimize_page.show_result(report)
        self.state.setText("Optimized" if report.result.output_path else "Accuracy budget not met")

    def _optimize_failed(self, message: str) -> None:
        cancelled = self.optimize_job is not None and self.optimize_job.cancel.is_set()
        self.optimize_job = None
        self.optimize_page.set_busy(False)
        self.state.setText("Optimization cancelled: nothing written" if cancelled else "Optimization failed")

    def _current_model_location(self) -> str | None:
        return self._model_location() if self.handle is not None else None

    def show_layers(self, run_id: int) -> None:
        self.ensure_plot_pages()
        self.layers_view.show_run(run_id)
        self.nav.setCurrentRow(list(self.pages).index("Layers"))

    def _model_location(self) -> str:
        handle = self.handle
        return f"{handle.path}:{handle.factory_function}" if handle.factory_function else str(handle.path)

    # -- generate --------------------------------------------------------------------------------------------
    def start_generate(self) -> None:
        from studio.usecases.generation import benchmark_generation

        if self.generate_job is not None:
            return
        request = self.generate_page.request(self.db_url)
        samples = self.generate_page.started()
        self.generate_job = self.start_job("generate", lambda cancel, progress: benchmark_generation(
            request, cancel=cancel, progress=progress, live=samples), self._generated, self._generate_failed)

    def _generated(self, report) -> None:
        self.generate_job = None
        self.generate_page.finished(report)
        self.history.refresh()

    def _generate_failed(self, message: str) -> None:
        self.generate_job = None
        self.generate_page.finished(error=message)

    # -- export ----------------------------------------------------------------------------------------------
    def export(self, **source) -> None:
        """Asks where, then writes the bundle of a model, a saved run or an optimized artifact."""
        from PySide6.QtWidgets import QFileDialog

        name = f"{self.handle.path.stem}-bundle" if self.handle else "bundle"
        path, _ = QFileDialog.getSaveFileName(self, "Export deployment bundle (a new folder)", name)
        if path:
            self.export_to(path, **source)

    def export_to(self, path: str, **source) -> None:
        from studio.usecases.bundles import ExportRequest, export_deployment_bundle

        force = False
        if Path(path).exists():
            answer = QMessageBox.question(self, "Replace bundle?", f"{path} exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            force = True
        request = ExportRequest(output=path, force=force, db_url=self.db_url, **source)
        self.state.setText(f"Exporting to {path}…")
        self.start_job("export", lambda cancel, progress: export_deployment_bundle(
            request, cancel=cancel, progress=progress), self._exported)

    def _exported(self, result) -> None:
        self.state.setText(f"Exported {result.path}")
        box = QMessageBox(QMessageBox.Icon.Information, "Export finished",
                          f"The bundle is in {result.path} ({result.size_bytes / 1e6:.2f} MB, {len(result.files)} files).",
                          QMessageBox.StandardButton.Close, self)
        box.setObjectName("exportDone")
        show = box.addButton("Show in folder", QMessageBox.ButtonRole.ActionRole)
        show.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(result.path).parent))))
        box.setModal(False)
        box.show()

    # -- history and compare ---------------------------------------------------------------------------------
    def _compare(self, run_ids: list[int]) -> None:
        self.ensure_plot_pages()
        self.compare_page.compare(run_ids)
        self.nav.setCurrentRow(list(self.pages).index("Compare"))

    def open_saved_run(self, run_id: int) -> None:
        url = self.db_url
        self.start_job("open run", lambda cancel, progress: usecases.load_run(url, run_id, telemetry=True),
                       self._show_saved_run)

    def _show_saved_run(self, data) -> None:
        self.ensure_plot_pages()
        self.dashboard.show_saved(data)
        self.nav.setCurrentRow(list(self.pages).index("Dashboard"))

    # -- menus -----------------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action_id in ("open", "run", "stop", "compare", "export"):
            toolbar.addAction(self.actions[action_id])
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(self.actions["open"])
        self.recent_menu = file_menu.addMenu("Open &recent")
        self._fill_recent_menu()
        file_menu.addAction(self.actions["export"])
        file_menu.addSeparator()
        file_menu.addAction(self.actions["data_folder"])
        file_menu.addAction(self.actions["quit"])
        run_menu = self.menuBar().addMenu("&Run")
        for action_id in ("run", "stop", "compare"):
            run_menu.addAction(self.actions[action_id])
        view_menu = self.menuBar().addMenu("&View")
        theme_menu = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        current = self.settings.value("view/theme", "system")
        for theme in THEMES:
            action = theme_menu.addAction(theme.capitalize())
            action.setCheckable(True)
            action.setChecked(theme == current)
            action.triggered.connect(lambda _=False, t=theme: self.set_theme(t))
            group.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self.actions["about"])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.value("model/recent") or []
        for path in recent:
            self.recent_menu.addAction(path, lambda p=path: self.open_model(p))
        self.recent_menu.setEnabled(bool(recent))

    def set_theme(self, theme: str) -> None:
        import pyqtgraph as pg

        self.settings.setValue("view/theme", theme)
        apply_theme(QApplication.instance(), theme)
        for plot in self.findChildren(pg.PlotWidget):
            plot.setBackground(plot_background())
            plot.getPlotItem().titleLabel.setText(plot.getPlotItem().titleLabel.text, color=plot_foreground())

    def open_data_folder(self) -> None:
        from storage import resolve_database_url

        url = resolve_database_url(self.db_url)
        if url.get_backend_name() != "sqlite":
            QMessageBox.information(self, "Data folder", f"Runs are stored on a server: {url.render_as_string()}")
            return
        folder = Path(url.database).parent
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_TITLE}", about_text())

    # -- closing ---------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.run_job is not None:
            answer = QMessageBox.question(self, "A run is in progress",
                                          "Stop the run and quit? It is saved as cancelled with what it measured.")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.run_job.stop()
        if self.sweep_page is not None:
            self.sweep_page.cancel()  # a sweep can run for minutes: stop it like a run
        self.closing = True
        for job in list(self.jobs):
            job.wait(CLOSE_WAIT_S)
        if self.dashboard is not None:
            self.dashboard.timer.stop()
            self.generate_page.timer.stop()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.run_settings.save(self.settings)
        self.garbage_collector.stop()
        event.accept()


def about_text() -> str:
    import pyqtgraph as pg

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (f"<b>{APP_TITLE}</b> {__version__}<br>torch {version('torch')}<br>onnxruntime {version('onnxruntime')}"
            f"<br>Qt {qVersion()} (PySide6 {version('PySide6-Essentials')})<br>pyqtgraph {pg.__version__}")
