"""The Sweep page: a batch × threads grid measured point by point, shown as a throughput heat map with the latency
limit marked, the throughput-vs-latency frontier, and every point's saved run one click away.

The sweep runs through the main window's `start_job` (cancel, progress, errors in a dialog); each measured point
reaches the page as a queued signal from the worker, so the map fills in as the sweep goes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.errors import InputError
from engine.measure.adaptive_stopping import StoppingRule
from engine.sweep.analysis import GridTable, SweepAnalysis, analyze_sweep
from engine.sweep.grid import PointSummary
from studio.ui.pages.layers_view import NumberItem, StartJob
from studio.ui.widgets.error_dialog import show_error
from studio.ui.widgets.tables import read_only_table
from studio.ui.widgets.theme import SERIES_COLOURS, plot_background, plot_foreground
from studio.usecases.sweeps import (
    SweepReport,
    SweepRequest,
    parse_list,
    sweep_model,
    thread_count,
)

COLOUR_MAP = pg.colormap.get("viridis")
LIMIT_COLOUR = SERIES_COLOURS[3]
POINT_COLUMNS = ("point", "status", "run", "p50 ms", "limit pct ms", "items/s", "items/J", "stopped by")


class SweepPage(QWidget):
    open_run = Signal(int)  # "open this point's run": the main window shows it like a History run
    point_measured = Signal(object, object)  # PointSummary, run id: emitted by the worker, queued to the page
    sweep_finished = Signal(object)  # the SweepReport: new runs exist (History may refresh)

    def __init__(self, start_job: StartJob, current_model: Callable[[], str | None], db_url: str | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._start_job = start_job
        self._current_model = current_model
        self.db_url = db_url
        self.job = None
        self.summaries: dict[str, PointSummary] = {}
        self.run_ids: dict[str, int] = {}
        self.report: SweepReport | None = None
        self.analysis: SweepAnalysis | None = None
        self.selected_key: str | None = None
        self._cell_items: list = []
        self._point_labels: list[pg.TextItem] = []
        self.point_measured.connect(self._add_point)
        self._build_form()
        self._build_plots()
        self.points = read_only_table(POINT_COLUMNS)
        self.points.setSortingEnabled(True)
        self.points.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.points.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.points.itemSelectionChanged.connect(self._table_selection)
        self.points.doubleClicked.connect(lambda _: self._open_selected())
        self.open_button = _button("Open this point's run", self._open_selected, enabled=False)
        self.choices = QLabel()
        self.choices.setWordWrap(True)
        self.choices.setTextFormat(Qt.TextFormat.PlainText)
        bottom = QHBoxLayout()
        bottom.addWidget(self.choices, 1)
        bottom.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignTop)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.heat)
        plots.addWidget(self.frontier)
        layout = QVBoxLayout(self)
        for part, stretch in ((self.form, 0), (self.status, 0), (self.choice_row, 0), (plots, 3), (bottom, 0),
                              (self.points, 2)):
            (layout.addLayout if isinstance(part, QHBoxLayout) else layout.addWidget)(part, stretch)

    # -- settings --------------------------------------------------------------------------------------------
    def _build_form(self) -> None:
        self.model_label = QLabel("no model open")
        self.batches = _line("1,2,4,8", "batch sizes, comma-separated")
        self.threads = _line("1,2", "intra-op thread counts; 'default' leaves the runtime's choice")
        self.providers = _line("cpu", "device ids (cpu, cuda:0, npu) or ONNX Runtime provider names")
        self.latency_limit = _spin(QDoubleSpinBox(), (0.0, 1e6), 0.0, " ms", "the chosen point keeps its latency "
                                   "percentile under this")
        self.latency_limit.setDecimals(3)
        self.latency_limit.setSpecialValueText("no limit")
        self.percentile = QComboBox()
        self.percentile.addItems(["p99", "p95", "p90", "p50"])
        self.point_cap = _spin(QDoubleSpinBox(), (0.05, 600.0), 5.0, " s",
                               "each point stops once its median's 95% CI is within ±2%, or at this cap")
        self.seed = _spin(QSpinBox(), (0, 2**31 - 1), 0, "", "seed of the random point order")
        self.latency_limit.valueChanged.connect(lambda _: self.summaries and self._redraw())
        self.percentile.currentTextChanged.connect(lambda _: self.summaries and self._redraw())
        self.run_button = _button("Run sweep", self.start)
        self.cancel_button = _button("Cancel", self.cancel, enabled=False)
        self.form = QHBoxLayout()
        for rows in ((("Model", self.model_label), ("Batch sizes", self.batches), ("Threads", self.threads),
                      ("Providers", self.providers)),
                     (("Latency limit", self.latency_limit), ("Latency percentile", self.percentile),
                      ("Time cap per point", self.point_cap), ("Seed (point order)", self.seed))):
            column = QFormLayout()
            for label, field in rows:
                column.addRow(label, field)
            self.form.addLayout(column, 2)
        buttons = QVBoxLayout()
        for widget in (self.run_button, self.cancel_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        self.form.addLayout(buttons)
        self.status = QLabel("Set the grid and press Run sweep: every point is saved as a run.")
        self.table_choice = QComboBox()  # shown when the grid has several providers or recipes: one map each
        self.table_choice.currentIndexChanged.connect(lambda _: self._draw_heat_map())
        self.choice_label = QLabel("Heat map of")
        self.choice_row = QHBoxLayout()
        for widget in (self.choice_label, self.table_choice):
            self.choice_row.addWidget(widget)
            widget.hide()
        self.choice_row.addStretch(1)

    def request(self, model: str) -> SweepRequest:
        """The form as a request; bad fields raise InputError with a message to show."""
        cap = self.point_cap.value()
        return SweepRequest(
            model=model, batches=parse_list(self.batches.text(), int, "batch sizes"),
            threads=parse_list(self.threads.text(), thread_count, "thread counts or 'default'"),
            providers=parse_list(self.providers.text(), str, "providers"), seed=self.seed.value(),
            stopping=StoppingRule(min_duration_s=min(StoppingRule().min_duration_s, cap), max_duration_s=cap),
            latency_limit_ms=self.latency_limit.value() or None, percentile=self.percentile.currentText(),
            db_url=self.db_url)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.model_label.setText(self._current_model() or "no model open")

    # -- running ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        model = self._current_model()
        if self.job is not None:
            return
        if not model:
            show_error(self, "Sweep", "Open a model first (File ▸ Open).")
            return
        try:
            request = self.request(model)
        except InputError as error:
            show_error(self, "Sweep settings", " ".join(str(error).split()))
            return
        self.model_label.setText(model)
        self.summaries.clear()
        self.run_ids.clear()
        self.report = None
        self.selected_key = None
        self._redraw()
        emit = self.point_measured.emit
        self.job = self._start_job("sweep", lambda cancel, progress: sweep_model(
            request, cancel, progress, on_point=emit), self._finished, self._failed)
        self.job.progressed.connect(lambda fraction, message: self.status.setText(f"{fraction:.0%} {message}"))
        self._set_running(True)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.status.setText("Stopping after the current iteration…")

    def _add_point(self, summary: PointSummary, run_id: int | None) -> None:
        self.summaries[summary.key] = summary
        if run_id is not None:
            self.run_ids[summary.key] = run_id
        self._redraw()

    def _finished(self, report: SweepReport) -> None:
        self.job = None
        self._set_running(False)
        self.report = report
        self.summaries = {s.key: s for s in report.summaries}
        self.run_ids = dict(report.run_ids)
        done = len(report.summaries) - len(report.skipped)
        self.status.setText(f"Sweep {report.sweep_id} {report.status}: {done} points measured"
                            + (f", {len(report.skipped)} from earlier" if report.skipped else ""))
        self._redraw()
        self.sweep_finished.emit(report)

    def _failed(self, message: str) -> None:
        self.job = None
        self._set_running(False)
        self.status.setText(f"Sweep failed: {message}")

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    # -- views -----------------------------------------------------------------------------------------------
    def _build_plots(self) -> None:
        self.heat = _plot("Throughput by batch × threads", "intra-op threads", "batch size")
        heat = self.heat.getPlotItem()
        heat.invertY(True)
        heat.setMouseEnabled(False, False)
        self.image = pg.ImageItem(axisOrder="row-major")
        heat.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=COLOUR_MAP, label="items/s", interactive=False,
                                          width=15)
        self.colour_bar.setImageItem(self.image, insert_in=heat)
        self.heat.scene().sigMouseClicked.connect(self._heat_clicked)
        self.frontier = _plot("Throughput vs latency", "latency (ms)", "items/s")
        legend_background = plot_background()
        legend_background.setAlpha(200)  # one row at the top, over the headroom _draw_frontier leaves
        self.frontier.addLegend(offset=(10, 5), colCount=3, brush=pg.mkBrush(legend_background),
                                labelTextColor=plot_foreground())
        self.scatter = pg.ScatterPlotItem(size=10, pen=pg.mkPen(None), brush=pg.mkBrush(SERIES_COLOURS[0]),
                                          name="measured points", hoverable=True, tip=self._point_tip)
        self.scatter.sigClicked.connect(lambda _, spots, *rest: spots and self.select_point(spots[0].data()))
        self.frontier_curve = pg.PlotDataItem(pen=pg.mkPen(SERIES_COLOURS[1], width=2), name="frontier")
        self.chosen = pg.ScatterPlotItem(symbol="star", size=20, pen=pg.mkPen(plot_foreground()),
                                         brush=pg.mkBrush(SERIES_COLOURS[2]), name="fastest under the limit")
        self.selected = pg.ScatterPlotItem(size=18, pen=pg.mkPen(plot_foreground(), width=2), brush=pg.mkBrush(None))
        limit_pen = pg.mkPen(LIMIT_COLOUR, width=2, style=Qt.PenStyle.DashLine)
        self.limit_line = pg.InfiniteLine(angle=90, pen=limit_pen, label="",
                                          labelOpts={"position": 0.06, "color": LIMIT_COLOUR, "movable": False})
        for item in (self.frontier_curve, self.scatter, self.chosen, self.selected, self.limit_line):
            self.frontier.addItem(item)

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
        self._draw_heat_map()
        self._draw_frontier()
        self._fill_points()
        self._show_choices()

    def _table(self) -> GridTable | None:
        index = self.table_choice.currentIndex()
        tables = self.analysis.tables if self.analysis else ()
        return tables[index] if 0 <= index < len(tables) else None

    def _draw_heat_map(self) -> None:
        heat = self.heat.getPlotItem()
        for item in self._cell_items:
            heat.removeItem(item)
        self._cell_items.clear()
        table = self._table()
        if table is None:
            self.image.clear()
            self.colour_bar.setVisible(False)
            return
        values = np.array([[np.nan if v is None else v for v in row] for row in table.values()], dtype=float)
        known = values[np.isfinite(values)]
        low, high = (float(known.min()), float(known.max())) if known.size else (0.0, 1.0)
        high = high if high > low else low + max(abs(low) * 0.01, 1e-9)
        self.image.setImage(values, autoLevels=False, levels=(low, high))
        self.image.setRect(QRectF(0, 0, len(table.threads), len(table.batches)))
        self.colour_bar.setLevels((low, high))
        self.colour_bar.setVisible(bool(known.size))  # a map of failed points has no scale
        heat.getAxis("bottom").setTicks([[(c + 0.5, "default" if t is None else str(t))
                                          for c, t in enumerate(table.threads)]])
        heat.getAxis("left").setTicks([[(r + 0.5, str(b)) for r, b in enumerate(table.batches)]])
        heat.setXRange(0, len(table.threads), padding=0.02)
        heat.setYRange(0, len(table.batches), padding=0.02)
        chosen = self.analysis.fastest.summary.key if self.analysis.fastest.summary else None
        for row, cells in enumerate(table.cells):
            for column, cell in enumerate(cells):
                if cell is not None:
                    self._draw_cell(cell, row, column, values[row, column], (low, high), chosen)

    def _draw_cell(self, cell: PointSummary, row: int, column: int, value: float, levels, chosen: str | None) -> None:
        heat = self.heat.getPlotItem()
        limit, percentile = self.analysis.latency_limit_ms, self.analysis.percentile
        latency = cell.latency_ms(percentile)
        if math.isfinite(value):
            fill = COLOUR_MAP.map((value - levels[0]) / (levels[1] - levels[0]), mode="qcolor")
            luminance = 0.299 * fill.red() + 0.587 * fill.green() + 0.114 * fill.blue()  # what the eye sees
            colour = QColor("black") if luminance > 140 else QColor("white")
            text = f"{_rate(value)}/s\n{percentile} {latency:.3g} ms"
        else:
            colour, text = plot_foreground(), cell.status
        over = limit is not None and latency is not None and latency > limit
        if over:
            text += "\nover the limit"
        label = pg.TextItem(text, color=colour, anchor=(0.5, 0.5))
        font = QFont(label.textItem.font())
        font.setPointSize(9)
        font.setBold(cell.key == chosen)
        label.setFont(font)
        label.setPos(column + 0.5, row + 0.5)
        items: list = [label]
        for key, pen in ((cell.key == chosen and over is False, pg.mkPen(plot_foreground(), width=3)),
                         (over, pg.mkPen(LIMIT_COLOUR, width=3, style=Qt.PenStyle.DashLine)),
                         (cell.key == self.selected_key, pg.mkPen(SERIES_COLOURS[1], width=4))):
            if key:
                inset = 0.04 if pen.style() == Qt.PenStyle.DashLine else 0.02
                rect = QGraphicsRectItem(QRectF(column + inset, row + inset, 1 - 2 * inset, 1 - 2 * inset))
                rect.setPen(pen)
                items.append(rect)
        for item in items:
            heat.addItem(item)
            self._cell_items.append(item)

    def _draw_frontier(self) -> None:
        analysis = self.analysis
        pct = analysis.percentile
        for label in self._point_labels:
            self.frontier.removeItem(label)
        self._point_labels.clear()
        usable = [s for s in self.summaries.values() if s.status == "completed" and s.latency_ms(pct) is not None
                  and s.throughput_per_s is not None]
        self.frontier.getPlotItem().setLabel("bottom", f"{pct} latency (ms)")
        self.scatter.setData([{"pos": (s.latency_ms(pct), s.throughput_per_s), "data": s.key} for s in usable])
        self.frontier_curve.setData([s.latency_ms(pct) for s in analysis.frontier],
                                    [s.throughput_per_s for s in analysis.frontier])
        best = analysis.fastest.summary
        self.chosen.setData([best.latency_ms(pct)] if best else [], [best.throughput_per_s] if best else [])
        picked = self.summaries.get(self.selected_key)
        shown = picked is not None and picked in usable
        self.selected.setData([picked.latency_ms(pct)] if shown else [], [picked.throughput_per_s] if shown else [])
        self.limit_line.setVisible(analysis.latency_limit_ms is not None)
        if analysis.latency_limit_ms is not None:
            self.limit_line.setValue(analysis.latency_limit_ms)
            self.limit_line.label.setFormat(f"limit {analysis.latency_limit_ms:g} ms")
        labelled = {s.key for s in analysis.frontier} | {self.selected_key}  # the rest have tooltips: no pile-ups
        providers = {s.point.provider for s in usable}
        for summary in (s for s in usable if s.key in labelled):
            label = pg.TextItem(_short_label(summary, len(providers) > 1), color=plot_foreground(), anchor=(0, 1))
            label.setPos(summary.latency_ms(pct), summary.throughput_per_s)
            self.frontier.addItem(label)
            self._point_labels.append(label)
        if usable:  # from zero, with room right of the last point for its label and above the highest for the legend
            right = max([s.latency_ms(pct) for s in usable] + [analysis.latency_limit_ms or 0.0])
            self.frontier.setXRange(0, right * 1.2, padding=0)
            self.frontier.setYRange(0, max(s.throughput_per_s for s in usable) * 1.3, padding=0)

    def _point_tip(self, x: float, y: float, key: str) -> str:
        summary = self.summaries.get(key)
        return f"{summary.point.label()}\n{y:,.1f} items/s, {self.analysis.percentile} {x:.3f} ms" if summary else ""

    def _fill_points(self) -> None:
        pct = self.analysis.percentile
        self.points.setHorizontalHeaderItem(POINT_COLUMNS.index("limit pct ms"), QTableWidgetItem(f"{pct} ms"))
        self.points.setSortingEnabled(False)
        self.points.blockSignals(True)
        self.points.setRowCount(len(self.summaries))
        for row, summary in enumerate(self.summaries.values()):
            run_id = self.run_ids.get(summary.key)
            p50, latency = summary.latency_ms("p50"), summary.latency_ms(pct)
            stopped = summary.error or ("converged" if summary.converged else summary.stop_reason)
            cells = [QTableWidgetItem(summary.point.label()), QTableWidgetItem(summary.status),
                     NumberItem(run_id, "–" if run_id is None else str(run_id)),
                     NumberItem(p50, _number(p50, ".3f")), NumberItem(latency, _number(latency, ".3f")),
                     NumberItem(summary.throughput_per_s, _number(summary.throughput_per_s, ",.1f")),
                     NumberItem(summary.items_per_joule, _number(summary.items_per_joule, ",.1f")),
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
            self._draw_heat_map()
            self._draw_frontier()
            self._fill_points()

    def _heat_clicked(self, event) -> None:
        table = self._table()
        if table is None:
            return
        position = self.heat.getPlotItem().vb.mapSceneToView(event.scenePos())
        row, column = math.floor(position.y()), math.floor(position.x())
        if 0 <= row < len(table.batches) and 0 <= column < len(table.threads) and table.cells[row][column]:
            self.select_point(table.cells[row][column].key)

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


def _plot(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background=plot_background())
    plot.setTitle(title, color=plot_foreground())
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.getPlotItem().hideButtons()
    plot.getPlotItem().setMenuEnabled(False)
    plot.setMinimumHeight(220)
    return plot


def _line(text: str, tip: str) -> QLineEdit:
    edit = QLineEdit(text)
    edit.setToolTip(tip)
    return edit


def _spin(box, limits: tuple, value: float, suffix: str, tip: str):
    box.setRange(*limits)
    box.setValue(value)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    return box


def _button(text: str, slot: Callable, *, enabled: bool = True) -> QPushButton:
    button = QPushButton(text)
    button.clicked.connect(slot)
    button.setEnabled(enabled)
    return button


def _group_name(provider: str, recipe: str | None) -> str:
    """One heat map per provider and recipe, picked by this name."""
    return f"{provider} / {recipe or 'original'}"


def _short_label(summary: PointSummary, with_provider: bool) -> str:
    point = summary.point
    threads = "default" if point.threads is None else point.threads
    return (f" b{point.batch}·t{threads}" + (f" {point.recipe}" if point.recipe else "")
            + (f" {point.provider}" if with_provider else ""))


def _choice(choice) -> str:
    return f"{choice.summary.point.label()}: {choice.reason}" if choice.summary else choice.reason


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _number(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)

