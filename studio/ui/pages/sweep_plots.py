"""The Sweep page's two plots: the throughput heat map of one provider and recipe (batch × threads, the latency
limit marked) and the throughput-vs-latency frontier of every point. Clicking a cell or a point selects it."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QGraphicsRectItem, QSplitter, QWidget

from engine.sweep.analysis import GridTable, SweepAnalysis
from engine.sweep.grid import PointSummary
from studio.ui.widgets.plots import add_legend, titled_plot
from studio.ui.widgets.theme import SERIES_COLOURS, plot_foreground

COLOUR_MAP = pg.colormap.get("viridis")
LIMIT_COLOUR = SERIES_COLOURS[3]
MIN_PLOT_HEIGHT = 220


class SweepPlots(QSplitter):
    point_clicked = Signal(str)  # the point's key

    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.analysis: SweepAnalysis | None = None
        self.summaries: dict[str, PointSummary] = {}
        self.table: GridTable | None = None
        self.selected_key: str | None = None
        self._cell_items: list = []
        self._point_labels: list[pg.TextItem] = []
        self.heat = _plot("Throughput by batch × threads", "intra-op threads", "batch size")
        heat = self.heat.getPlotItem()
        heat.invertY(True)
        heat.setMouseEnabled(False, False)
        self.image = pg.ImageItem(axisOrder="row-major")
        heat.addItem(self.image)
        self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=COLOUR_MAP, label="items/s", interactive=False,
                                          width=15)
        self.colour_bar.setImageItem(self.image, insert_in=heat)
        self.heat.scene().sigMouseClicked.connect(lambda event: self.click_heat_map(event.scenePos()))
        self.frontier = _plot("Throughput vs latency", "latency (ms)", "items/s")
        add_legend(self.frontier, (10, 5), colCount=3)  # one row at the top, over the headroom left for it
        self.scatter = pg.ScatterPlotItem(size=10, pen=pg.mkPen(None), brush=pg.mkBrush(SERIES_COLOURS[0]),
                                          name="measured points", hoverable=True, tip=self._point_tip)
        self.scatter.sigClicked.connect(lambda _, spots, *rest: spots and self.point_clicked.emit(spots[0].data()))
        self.frontier_curve = pg.PlotDataItem(pen=pg.mkPen(SERIES_COLOURS[1], width=2), name="frontier")
        self.chosen = pg.ScatterPlotItem(symbol="star", size=20, pen=pg.mkPen(plot_foreground()),
                                         brush=pg.mkBrush(SERIES_COLOURS[2]), name="fastest under the limit")
        self.selected = pg.ScatterPlotItem(size=18, pen=pg.mkPen(plot_foreground(), width=2), brush=pg.mkBrush(None))
        limit_pen = pg.mkPen(LIMIT_COLOUR, width=2, style=Qt.PenStyle.DashLine)
        self.limit_line = pg.InfiniteLine(angle=90, pen=limit_pen, label="",
                                          labelOpts={"position": 0.06, "color": LIMIT_COLOUR, "movable": False})
        for item in (self.frontier_curve, self.scatter, self.chosen, self.selected, self.limit_line):
            self.frontier.addItem(item)
        self.addWidget(self.heat)
        self.addWidget(self.frontier)

    def draw(self, analysis: SweepAnalysis, summaries: dict[str, PointSummary], table: GridTable | None,
             selected_key: str | None) -> None:
        self.analysis, self.summaries, self.table, self.selected_key = analysis, summaries, table, selected_key
        self._draw_heat_map()
        self._draw_frontier()

    def click_heat_map(self, scene_position) -> None:
        """Selects the point in the clicked cell, if one was measured there."""
        table = self.table
        if table is None:
            return
        position = self.heat.getPlotItem().vb.mapSceneToView(scene_position)
        row, column = math.floor(position.y()), math.floor(position.x())
        if 0 <= row < len(table.batches) and 0 <= column < len(table.threads) and table.cells[row][column]:
            self.point_clicked.emit(table.cells[row][column].key)

    # -- heat map --------------------------------------------------------------------------------------------
    def _draw_heat_map(self) -> None:
        heat = self.heat.getPlotItem()
        for item in self._cell_items:
            heat.removeItem(item)
        self._cell_items.clear()
        table = self.table
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

    # -- frontier --------------------------------------------------------------------------------------------
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


def _plot(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    plot = titled_plot(title, x_label, y_label)
    plot.getPlotItem().hideButtons()
    plot.getPlotItem().setMenuEnabled(False)
    plot.setMinimumHeight(MIN_PLOT_HEIGHT)
    return plot


def _short_label(summary: PointSummary, with_provider: bool) -> str:
    point = summary.point
    threads = "default" if point.threads is None else point.threads
    return (f" b{point.batch}·t{threads}" + (f" {point.recipe}" if point.recipe else "")
            + (f" {point.provider}" if with_provider else ""))


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
