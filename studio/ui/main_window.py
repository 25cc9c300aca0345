"""The main window: a thin shell that builds the state, the job runner, the pages and the actions, and wires them.

A left-side workflow (Model, Run settings, Optimize, Dashboard, Generate, History, Compare, Sweep, Layers) over the
Qt-free state in studio.ui.state; what the actions do is in studio.ui.workflows.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, QUrl, qVersion
from PySide6.QtGui import QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent
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
from studio.ui.job_runner import JobRunner
from studio.ui.pages.history_page import HistoryPage
from studio.ui.pages.model_page import ModelPage
from studio.ui.pages.optimize_page import OptimizePage
from studio.ui.pages.run_settings import RunSettingsPage
from studio.ui.state import AppState, JobState, JobStatus, OpenModel
from studio.ui.state.run_settings import SAVED_FIELDS
from studio.ui.widgets.theme import (
    THEMES,
    apply_theme,
    plot_background,
    plot_foreground,
)
from studio.ui.workflows import Workflows

APP_TITLE = "Open-AutoGLM Studio"
MAX_RECENT = 8
CLOSE_WAIT_S = 10.0
STARTUP_DELAY_MS = 50  # long enough for the first paint to come first
PAGE_ORDER = ("Model", "Run settings", "Optimize", "Dashboard", "Generate", "History", "Compare", "Sweep", "Layers")
SHOWN_WHEN_STARTED = {"run": "Dashboard", "compare": "Compare"}


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings, db_url: str | None = None):
        super().__init__()
        self.settings = settings
        self.state = AppState(db_url)
        self.runner = JobRunner(self.state.jobs, self)
        self.workflows = Workflows(self.state, self.runner, self)
        self.garbage_collector = GuiThreadGarbageCollector(self)
        self.setAcceptDrops(True)

        self.model_page = ModelPage(self.state)
        self.run_settings = RunSettingsPage(self.state)
        self.optimize_page = OptimizePage()
        self.history = HistoryPage(self.state, self.runner)
        # The plot pages need pyqtgraph (~0.5 s to import): they are built just after the window first shows.
        self.dashboard = self.generate_page = self.compare_page = self.sweep_page = self.layers_view = None
        ready = {"Model": self.model_page, "Run settings": self.run_settings, "Optimize": self.optimize_page,
                 "History": self.history}
        self.pages: dict[str, QWidget] = {name: ready[name] if name in ready else QLabel("Loading…")
                                          for name in PAGE_ORDER}
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
            "open": self.workflows.choose_model, "run": self.start_run, "stop": self.workflows.stop_run,
            "compare": lambda: self.compare(self.state.selected_runs), "export": self.workflows.export_open_model,
            "data_folder": self.open_data_folder, "about": self.show_about, "quit": self.close,
            **{f"theme_{theme}": (lambda t=theme: self.set_theme(t)) for theme in THEMES},
        })
        self._build_menus()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.status_line = QLabel("Ready")
        self.statusBar().addWidget(self.status_line, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self._wire()

        self.state.restore_run_settings({key: settings.value(f"run/{key}") for key in SAVED_FIELDS})
        if settings.value("window/geometry") is not None:
            self.restoreGeometry(settings.value("window/geometry"))
        else:
            self.resize(1280, 860)
        self._show_running()
        self.nav.setCurrentRow(0)

    def _wire(self) -> None:
        state, workflows = self.state, self.workflows
        state.status_changed.connect(self.status_line.setText)
        state.model_opened.connect(self._model_opened)
        state.jobs.started.connect(self._job_started)
        state.jobs.progressed.connect(self._job_progressed)
        state.jobs.finished.connect(self._job_finished)
        self.model_page.open_requested.connect(workflows.choose_model)
        self.optimize_page.optimize_requested.connect(lambda: workflows.optimize(self.optimize_page.recipe))
        self.optimize_page.cancel_requested.connect(lambda: state.jobs.cancel("optimize"))
        self.optimize_page.open_optimized.connect(workflows.open_model)
        self.optimize_page.export_artifact.connect(lambda artifact_id: workflows.export(artifact_id=artifact_id))
        self.history.export_run.connect(lambda run_id: workflows.export(run_id=run_id))
        self.history.open_layers.connect(self.show_layers)
        self.history.compare_runs.connect(self.compare)
        self.history.open_run.connect(self.open_saved_run)

    # -- start-up --------------------------------------------------------------------------------------------
    def start(self, model: str | None) -> None:
        """Opens `model` (else the last one, else the built-in sample) and discovers devices, off the GUI thread.

        All of it waits for the event loop, so the window paints first: worker threads importing onnx or
        SQLAlchemy would otherwise compete with the first paint for the interpreter.
        """
        last = self.settings.value("model/last")
        chosen = model or (last if last and Path(str(last).split(":")[0]).exists() else usecases.sample_models()["transformer"])
        self.state.announce("Starting…")
        QTimer.singleShot(STARTUP_DELAY_MS, lambda: self._start_jobs(chosen))

    def _start_jobs(self, model: str) -> None:
        self.ensure_plot_pages()
        self.workflows.open_model(model)
        self.workflows.find_devices()
        self.history.refresh()

    def ensure_plot_pages(self) -> None:
        if self.dashboard is not None:
            return
        from studio.ui.pages.compare_page import ComparePage
        from studio.ui.pages.dashboard import Dashboard
        from studio.ui.pages.generate_page import GeneratePage
        from studio.ui.pages.layers_view import LayersView
        from studio.ui.pages.sweep_page import SweepPage

        self.dashboard = self._replace_page("Dashboard", Dashboard(self.state))
        self.generate_page = self._replace_page("Generate", GeneratePage(self.state, self.runner))
        self.compare_page = self._replace_page("Compare", ComparePage(self.state))
        self.sweep_page = self._replace_page("Sweep", SweepPage(self.state, self.runner))
        self.sweep_page.open_run.connect(self.open_saved_run)
        self.layers_view = self._replace_page("Layers", LayersView(self.runner, self.state.db_url))

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

    def show_page(self, name: str) -> None:
        self.nav.setCurrentRow(list(self.pages).index(name))

    # -- what the state says ---------------------------------------------------------------------------------
    def _model_opened(self, model: OpenModel) -> None:
        path = str(model.handle.path)
        self.settings.setValue("model/last", path)
        recent = [path] + [p for p in (self.settings.value("model/recent") or []) if p != path]
        self.settings.setValue("model/recent", recent[:MAX_RECENT])
        self._fill_recent_menu()
        self._show_running()

    def _job_started(self, job: JobState) -> None:
        if job.show_progress:
            self.progress.setValue(0)
            self.progress.show()
        if job.kind == "run":
            self._save_settings()
            self._show_running()
        elif job.kind == "optimize":
            self.optimize_page.set_busy(True)
        if job.kind in SHOWN_WHEN_STARTED:
            self.show_page(SHOWN_WHEN_STARTED[job.kind])

    def _job_progressed(self, job: JobState) -> None:
        if job.show_progress:
            self.progress.setValue(int(job.fraction * 1000))
            self.status_line.setText(job.message)

    def _job_finished(self, job: JobState) -> None:
        if not any(other.show_progress for other in self.state.jobs.running()):
            self.progress.hide()
        succeeded = job.status is JobStatus.SUCCEEDED
        if job.kind == "run":
            self._show_running()
        elif job.kind == "optimize":
            self.optimize_page.set_busy(False)
            if succeeded:
                self.optimize_page.show_result(job.result)
        elif job.kind == "options" and succeeded:
            self.optimize_page.set_options(job.result)
        elif job.kind == "open run" and succeeded:
            self.show_page("Dashboard")

    def _show_running(self) -> None:
        running, model = self.state.jobs.is_running("run"), self.state.model
        self.actions["run"].setEnabled(not running and model is not None)
        self.actions["stop"].setEnabled(running)
        name = model.handle.name if model else "no model"
        self.setWindowTitle(f"{name} — {APP_TITLE}" + (" [running]" if running else ""))

    # -- actions that need the plot pages --------------------------------------------------------------------
    def start_run(self) -> None:
        self.ensure_plot_pages()
        self.workflows.run_benchmark()

    def compare(self, run_ids) -> None:
        self.ensure_plot_pages()
        self.workflows.compare(run_ids)

    def open_saved_run(self, run_id: int) -> None:
        self.ensure_plot_pages()
        self.workflows.open_saved_run(run_id)

    def show_layers(self, run_id: int) -> None:
        self.ensure_plot_pages()
        self.layers_view.show_run(run_id)
        self.show_page("Layers")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.workflows.open_model(urls[0].toLocalFile())
            event.acceptProposedAction()

    # -- menus -----------------------------------------------------------------------------------------------
    def _build_menus(self) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.actions.place(self.menuBar(), toolbar)
        file_menu = self.actions.menus["&File"]
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.insertMenu(self.actions["export"], self.recent_menu)
        self._fill_recent_menu()
        theme = self.settings.value("view/theme", "system")
        self.actions[f"theme_{theme if theme in THEMES else 'system'}"].setChecked(True)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.value("model/recent") or []
        for path in recent:
            self.recent_menu.addAction(path, lambda p=path: self.workflows.open_model(p))
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

        url = resolve_database_url(self.state.db_url)
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
        if self.state.jobs.is_running("run"):
            answer = QMessageBox.question(self, "A run is in progress",
                                          "Stop the run and quit? It is saved as cancelled with what it measured.")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.runner.shut_down(CLOSE_WAIT_S)  # a sweep or an optimization can run for minutes: stop them like a run
        if self.dashboard is not None:
            self.dashboard.timer.stop()
            self.generate_page.timer.stop()
        self._save_settings()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.garbage_collector.stop()
        event.accept()

    def _save_settings(self) -> None:
        for key, value in self.state.run_settings.saved().items():
            self.settings.setValue(f"run/{key}", value)


def about_text() -> str:
    import pyqtgraph as pg

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (f"<b>{APP_TITLE}</b> {__version__}<br>torch {version('torch')}<br>onnxruntime {version('onnxruntime')}"
            f"<br>Qt {qVersion()} (PySide6 {version('PySide6-Essentials')})<br>pyqtgraph {pg.__version__}")
