"""The Sweep page: a batch × threads grid measured point by point, shown as a throughput heat map with the latency
limit marked, the throughput-vs-latency frontier, and every point's saved run one click away.

The sweep runs as a job (cancel, progress, errors in a dialog); each measured point reaches the page as a queued
signal from the worker, so the map fills in as the sweep goes.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.errors import InputError
from engine.measure.adaptive_stopping import StoppingRule
from engine.sweep.analysis import GridTable, SweepAnalysis, analyze_sweep
from engine.sweep.grid import PointSummary
from studio import usecases
from studio.ui.job_runner import JobRunner
from studio.ui.pages.sweep_plots import SweepPlots
from studio.ui.state import AppState, JobState, JobStatus, OpenModel
from studio.ui.widgets.error_dialog import show_error
from studio.ui.widgets.forms import button, form, line_edit, spin_box
from studio.ui.widgets.tables import number_item, read_only_table
from studio.usecases import parse_list, thread_count

POINT_COLUMNS = ("point", "status", "run", "p50 ms", "limit pct ms", "items/s", "items/J", "stopped by")


class SweepPage(QWidget):
    open_run = Signal(int)  # "open this point's run": the main window shows it like a History run
    point_measured = Signal(object, object)  # PointSummary, run id: emitted by the worker, queued to the page

    def __init__(self, state: AppState, runner: JobRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = runner
        self.job: JobState | None = None
        self.summaries: dict[str, PointSummary] = {}
        self.run_ids: dict[str, int] = {}
        self.report: usecases.SweepReport | None = None
        self.analysis: SweepAnalysis | None = None
        self.selected_key: str | None = None
        self.point_measured.connect(self._add_point)
        self._build_form()
        self.plots = SweepPlots()
        self.plots.point_clicked.connect(self.select_point)
        self.points = read_only_table(POINT_COLUMNS)
        self.points.setSortingEnabled(True)
        self.points.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.points.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.points.itemSelectionChanged.connect(self._table_selection)
        self.points.doubleClicked.connect(lambda _: self._open_selected())
        self.open_button = button("Open this point's run", self._open_selected, enabled=False)
        self.choices = QLabel()
        self.choices.setWordWrap(True)
        self.choices.setTextFormat(Qt.TextFormat.PlainText)
        bottom = QHBoxLayout()
        bottom.addWidget(self.choices, 1)
        bottom.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        for part, stretch in ((self.form, 0), (self.status, 0), (self.choice_row, 0), (self.plots, 3), (bottom, 0),
                              (self.points, 2)):
            (layout.addLayout if isinstance(part, QHBoxLayout) else layout.addWidget)(part, stretch)
        state.model_opened.connect(self._show_model)
        state.jobs.progressed.connect(self._show_progress)
        state.jobs.finished.connect(self._sweep_ended)

    # -- settings --------------------------------------------------------------------------------------------
    def _build_form(self) -> None:
        self.model_label = QLabel(self.state.model.location if self.state.model else "no model open")
        self.batches = line_edit("1,2,4,8", "batch sizes, comma-separated")
        self.threads = line_edit("1,2", "intra-op thread counts; 'default' leaves the runtime's choice")
        self.providers = line_edit("cpu", "device ids (cpu, cuda:0, npu) or ONNX Runtime provider names")
        self.latency_limit = spin_box(0.0, 1e6, 0.0, suffix=" ms", special="no limit", decimals=3,
                                      tip="the chosen point keeps its latency percentile under this")
        self.percentile = QComboBox()
        self.percentile.addItems(["p99", "p95", "p90", "p50"])
        self.point_cap = spin_box(0.05, 600.0, 5.0, suffix=" s",
                                  tip="each point stops once its median's 95% CI is within ±2%, or at this cap")
        self.seed = spin_box(0, 2**31 - 1, 0, tip="seed of the random point order")
        self.latency_limit.valueChanged.connect(lambda _: self.summaries and self._redraw())
        self.percentile.currentTextChanged.connect(lambda _: self.summaries and self._redraw())
        self.run_button = button("Run sweep", self.start)
        self.cancel_button = button("Cancel", self.cancel, enabled=False)
        self.form = QHBoxLayout()
        for rows in ((("Model", self.model_label), ("Batch sizes", self.batches), ("Threads", self.threads),
                      ("Providers", self.providers)),
                     (("Latency limit", self.latency_limit), ("Latency percentile", self.percentile),
                      ("Time cap per point", self.point_cap), ("Seed (point order)", self.seed))):
            self.form.addLayout(form(rows), 2)
        buttons = QVBoxLayout()
        for widget in (self.run_button, self.cancel_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        self.form.addLayout(buttons)
        self.status = QLabel("Set the grid and press Run sweep: every point is saved as a run.")
        self.table_choice = QComboBox()  # shown when the grid has several providers or recipes: one map each
        self.table_choice.currentIndexChanged.connect(lambda _: self.analysis and self._draw_plots())
        self.choice_label = QLabel("Heat map of")
        self.choice_row = QHBoxLayout()
        for widget in (self.choice_label, self.table_choice):
            self.choice_row.addWidget(widget)
            widget.hide()
        self.choice_row.addStretch(1)

    def request(self, model: str) -> usecases.SweepRequest:
        """The form as a request; bad fields raise InputError with a message to show."""
        cap = self.point_cap.value()
        return usecases.SweepRequest(
            model=model, batches=parse_list(self.batches.text(), int, "batch sizes"),
            threads=parse_list(self.threads.text(), thread_count, "thread counts or 'default'"),
            providers=parse_list(self.providers.text(), str, "providers"), seed=self.seed.value(),
            stopping=StoppingRule(min_duration_s=min(StoppingRule().min_duration_s, cap), max_duration_s=cap),
            latency_limit_ms=self.latency_limit.value() or None, percentile=self.percentile.currentText(),
            db_url=self.state.db_url)

    def _show_model(self, model: OpenModel) -> None:
        if self.job is None:  # the label names the model being swept while a sweep runs
            self.model_label.setText(model.location)

    # -- running ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        model = self.state.model
        if self.job is not None:
            return
        if model is None:
            show_error(self, "Sweep", "Open a model first (File ▸ Open).")
            return
        try:
            request = self.request(model.location)
        except InputError as error:
            show_error(self, "Sweep settings", " ".join(str(error).split()))
            return
        self.model_label.setText(model.location)
        self.summaries.clear()
        self.run_ids.clear()
        self.report = None
        self.selected_key = None
        self._redraw()
        emit = self.point_measured.emit
        self.job = self.runner.start("sweep", lambda cancel, progress: usecases.sweep_model(
            request, cancel, progress, on_point=emit))
        self._set_running(True)

    def cancel(self) -> None:
        if self.state.jobs.cancel("sweep"):
            self.status.setText("Stopping after the current iteration…")

    def _add_point(self, summary: PointSummary, run_id: int | None) -> None:
        self.summaries[summary.key] = summary
        if run_id is not None:
            self.run_ids[summary.key] = run_id
        self._redraw()

    def _show_progress(self, job: JobState) -> None:
        if job.kind == "sweep":
            self.status.setText(f"{job.fraction:.0%} {job.message}")

    def _sweep_ended(self, job: JobState) -> None:
        if job is not self.job:
            return
        self.job = None
        self._set_running(False)
        if job.status is not JobStatus.SUCCEEDED:
            self.status.setText(f"Sweep failed: {job.error}")
            return
        report = self.report = job.result
        self.summaries = {s.key: s for s in report.summaries}
        self.run_ids = dict(report.run_ids)
        done = len(report.summaries) - len(report.skipped)
        self.status.setText(f"Sweep {report.sweep_id} {report.status}: {done} points measured"
                            + (f", {len(report.skipped)} from earlier" if report.skipped else ""))
        self._redraw()

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    # -- views -----------------------------------------------------------------------------------------------
    def _redraw(self) -> None:
        # The limit and percentile only steer the analysis: changing them re-analyses the points measured
        self.analysis = analyze_sweep(self.summaries.values(), latency_limit_ms=self.latency_limit.value() or None,
                                      percentile=self.percentile.currentText())
        names = [_group_name(t.provider, t.recipe) for t in self.analysis.tables]
        current = self.table_choice.currentText()
        self.table_choice.blockSignals(True)
        self.table_choice.clear()
        self.table_choice.addItems(names)
        self.table_choice.setCurrentIndex(max(names.index(current) if current in names else 0, 0))
        self.table_choice.blockSignals(False)
        for widget in (self.choice_label, self.table_choice):
            widget.setVisible(len(names) > 1)
        self._draw_plots()
        self._fill_points()
        self._show_choices()

    def _table(self) -> GridTable | None:
        index = self.table_choice.currentIndex()
        tables = self.analysis.tables if self.analysis else ()
        return tables[index] if 0 <= index < len(tables) else None

    def _draw_plots(self) -> None:
        self.plots.draw(self.analysis, self.summaries, self._table(), self.selected_key)

    def _fill_points(self) -> None:
        pct = self.analysis.percentile
        self.points.setHorizontalHeaderItem(POINT_COLUMNS.index("limit pct ms"), QTableWidgetItem(f"{pct} ms"))
        self.points.setSortingEnabled(False)
        self.points.blockSignals(True)
        self.points.setRowCount(len(self.summaries))
        for row, summary in enumerate(self.summaries.values()):
            stopped = summary.error or ("converged" if summary.converged else summary.stop_reason)
            cells = [QTableWidgetItem(summary.point.label()), QTableWidgetItem(summary.status),
                     number_item(self.run_ids.get(summary.key), "d"),
                     number_item(summary.latency_ms("p50"), ".3f"), number_item(summary.latency_ms(pct), ".3f"),
                     number_item(summary.throughput_per_s, ",.1f"), number_item(summary.items_per_joule, ",.1f"),
                     QTableWidgetItem(stopped)]
            cells[0].setData(Qt.ItemDataRole.UserRole, summary.key)
            cells[-1].setToolTip(stopped)
            for column, cell in enumerate(cells):
                self.points.setItem(row, column, cell)
        self.points.setSortingEnabled(True)
        for row in range(self.points.rowCount()):
            if self.points.item(row, 0).data(Qt.ItemDataRole.UserRole) == self.selected_key:
                self.points.selectRow(row)
        self.points.blockSignals(False)

    def _show_choices(self) -> None:
        analysis = self.analysis
        if not self.summaries:
            self.choices.setText("")
            return
        limit = (f"under {analysis.latency_limit_ms:g} ms {analysis.percentile}" if analysis.latency_limit_ms
                 else "(no latency limit)")
        lines = [f"Fastest {limit}: " + _choice(analysis.fastest),
                 "Most energy-efficient: " + _choice(analysis.most_efficient)]
        failures: dict[str, list[str]] = {}
        for summary in analysis.failed:
            failures.setdefault(summary.error or "unknown error", []).append(summary.point.label())
        lines += [f"Failed ({'; '.join(labels)}): {error}" for error, labels in failures.items()]
        self.choices.setText("\n".join(lines))

    # -- selection -------------------------------------------------------------------------------------------
    def select_point(self, key: str | None) -> None:
        """Selects a point everywhere (map, frontier, table); its run can then be opened."""
        if key == self.selected_key:
            return
        self.selected_key = key
        self.open_button.setEnabled(key in self.run_ids)
        if self.analysis is not None:
            table = self._table()
            summary = self.summaries.get(key)
            if table is not None and summary is not None and (summary.point.provider, summary.point.recipe) != (
                    table.provider, table.recipe):
                self.table_choice.setCurrentText(_group_name(summary.point.provider, summary.point.recipe))
            self._draw_plots()
            self._fill_points()

    def _table_selection(self) -> None:
        rows = self.points.selectionModel().selectedRows()
        if rows:
            self.select_point(self.points.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole))

    def _open_selected(self) -> None:
        run_id = self.run_ids.get(self.selected_key)
        if run_id is not None:
            self.open_run.emit(run_id)

    def changeEvent(self, event: QEvent) -> None:
        """Cell and point labels take the theme's colours: redraw them when the theme changes."""
        super().changeEvent(event)
        themed = event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)
        if themed and self.analysis is not None:
            self._redraw()


def _group_name(provider: str, recipe: str | None) -> str:
    """One heat map per provider and recipe, picked by this name."""
    return f"{provider} / {recipe or 'original'}"


def _choice(choice) -> str:
    return f"{choice.summary.point.label()}: {choice.reason}" if choice.summary else choice.reason
