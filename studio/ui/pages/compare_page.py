"""2-8 saved runs side by side: latency CDF and histogram overlays, aligned statistics with the ratio of
medians and its 95% interval from storage's comparison, energy, and warnings; exportable as CSV or HTML."""

from __future__ import annotations

import csv
import html
import io

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.atomic_files import write_text_atomically
from studio import usecases
from studio.ui.widgets.theme import SERIES_COLOURS, plot_background, plot_foreground
from studio.usecases import ComparisonView

HISTOGRAM_BINS = 80


class ComparePage(QWidget):
    run_jobs = Signal(str, object, object)

    def __init__(self, db_url: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.db_url = db_url
        self.view: ComparisonView | None = None
        self.heading = QLabel("Select 2–8 runs in History and press “Compare selected” (Ctrl+K).")
        self.cdf = _plot("Latency CDF", "latency (ms)", "share of iterations")
        self.histogram = _plot("Latency histogram", "latency (ms)", "iterations")
        plots = QHBoxLayout()
        plots.addWidget(self.cdf)
        plots.addWidget(self.histogram)
        self.table = QTableWidget()
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.verdicts = QLabel()
        self.verdicts.setWordWrap(True)
        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet("color: #d9822b;")
        export_csv = QPushButton("Export CSV…")
        export_csv.clicked.connect(lambda: self._export("csv"))
        export_html = QPushButton("Export HTML…")
        export_html.clicked.connect(lambda: self._export("html"))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(export_csv)
        buttons.addWidget(export_html)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(plots, 3)
        layout.addWidget(self.verdicts)
        layout.addWidget(self.warnings)
        layout.addWidget(self.table, 2)
        layout.addLayout(buttons)

    def compare(self, run_ids: list[int]) -> None:
        url = self.db_url
        self.heading.setText(f"Comparing runs {', '.join(map(str, run_ids))}…")
        self.run_jobs.emit("compare", lambda cancel, progress: usecases.compare_with_samples(url, run_ids), self.show_view)

    def show_view(self, view: ComparisonView) -> None:
        self.view = view
        comparison = view.comparison
        self.heading.setText("Baseline: run {}. Ratios are each run's median over the baseline's (below 1 is faster)."
                             .format(comparison.runs[0].run_id))
        self.cdf.clear()
        self.histogram.clear()
        samples = list(view.latencies_ms.values())
        upper = max(float(np.percentile(s, 99.5)) for s in samples if s.size) if any(s.size for s in samples) else 1.0
        edges = np.linspace(0.0, upper, HISTOGRAM_BINS + 1)
        for index, run in enumerate(comparison.runs):
            values = np.sort(view.latencies_ms[run.run_id])
            pen = pg.mkPen(SERIES_COLOURS[index % len(SERIES_COLOURS)], width=2)
            if values.size:
                self.cdf.plot(values, np.arange(1, values.size + 1) / values.size, pen=pen, name=f"run {run.run_id}")
                counts, _ = np.histogram(values, bins=edges)
                self.histogram.plot(edges, counts, stepMode="center", pen=pen, name=f"run {run.run_id}")
        self.cdf.setXRange(0, upper)
        self._fill_table()
        self.verdicts.setText("<br>".join(html.escape(pair.explanation) for pair in comparison.pairs))
        self.warnings.setText("<br>".join("⚠ " + html.escape(w) for w in comparison.warnings))

    def rows(self) -> list[list[str]]:
        """The aligned table, first row the header; the same rows go to the CSV and HTML exports."""
        comparison = self.view.comparison
        header = ["statistic", *(f"run {run.run_id}" for run in comparison.runs)]
        rows = [header]
        for name, values in comparison.statistics_table():
            rows.append([name, *("n/a" if v is None else f"{v:,.4g}" for v in values)])
        ratio_row = ["median ratio (95% CI)", "baseline"]
        for pair in comparison.pairs:
            ratio_row.append("n/a" if pair.median_ratio is None else
                             f"{pair.median_ratio:.3f} ({pair.ci_low:.3f}–{pair.ci_high:.3f})")
        rows.append(ratio_row)
        for energy in comparison.energy:
            rows.append([f"J/inference {energy.device}", *("unavailable" if v is None else f"{v:.4g}"
                                                             for v in energy.joules_per_inference)])
        return rows

    def _fill_table(self) -> None:
        rows = self.rows()
        self.table.setColumnCount(len(rows[0]))
        self.table.setHorizontalHeaderLabels(rows[0])
        self.table.setRowCount(len(rows) - 1)
        for row, values in enumerate(rows[1:]):
            for column, value in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(value))

    def _export(self, kind: str) -> None:
        if self.view is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison", f"comparison.{kind}",
                                              "CSV (*.csv)" if kind == "csv" else "HTML (*.html)")
        if path:
            self.export(path, kind)

    def export(self, path: str, kind: str) -> None:
        text = self._csv() if kind == "csv" else self._html()
        write_text_atomically(path, text)

    def _csv(self) -> str:
        stream = io.StringIO()
        csv.writer(stream).writerows(self.rows())
        return stream.getvalue()

    def _html(self) -> str:
        from studio.reports.html import (
            comparison_html,  # matplotlib loads on the first export, not at start-up
        )

        return comparison_html(self.view.comparison, self.view.latencies_ms)

def _plot(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background=plot_background())
    plot.setTitle(title, color=plot_foreground())
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    legend_background = plot_background()
    legend_background.setAlpha(200)
    plot.addLegend(offset=(-10, 10), brush=pg.mkBrush(legend_background), labelTextColor=plot_foreground())
    return plot


