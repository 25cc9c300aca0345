"""2-8 saved runs side by side: latency CDF and histogram overlays, aligned statistics with the ratio of
medians and its 95% interval from storage's comparison, energy, and warnings; exportable as CSV or HTML."""

from __future__ import annotations

import csv
import html
import io

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from core.atomic_files import write_text_atomically
from studio.present.numbers import number
from studio.ui.state import AppState, JobState, JobStatus
from studio.ui.widgets.forms import button
from studio.ui.widgets.plots import add_legend, titled_plot
from studio.ui.widgets.tables import fill_table, read_only_table
from studio.ui.widgets.theme import SERIES_COLOURS
from studio.usecases import ComparisonView

HISTOGRAM_BINS = 80


class ComparePage(QWidget):
    """Shows the latest comparison job's runs (started by the Compare action or History's button)."""

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.view: ComparisonView | None = None
        self.heading = QLabel("Select 2–8 runs in History and press “Compare selected” (Ctrl+K).")
        self.cdf = _plot("Latency CDF", "latency (ms)", "share of iterations")
        self.histogram = _plot("Latency histogram", "latency (ms)", "iterations")
        plots = QHBoxLayout()
        plots.addWidget(self.cdf)
        plots.addWidget(self.histogram)
        self.table = read_only_table(())
        self.table.setAlternatingRowColors(False)
        self.verdicts = QLabel()
        self.warnings = QLabel()
        for label in (self.verdicts, self.warnings):
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)  # escaped text joined by <br>: one line could pass for plain
        self.warnings.setStyleSheet("color: #d9822b;")
        self.export_csv = button("Export CSV…", lambda: self._export("csv"))
        self.export_html = button("Export HTML…", lambda: self._export("html"))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.export_csv)
        buttons.addWidget(self.export_html)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addLayout(plots, 3)
        layout.addWidget(self.verdicts)
        layout.addWidget(self.warnings)
        layout.addWidget(self.table, 2)
        layout.addLayout(buttons)
        state.jobs.started.connect(self._comparison_started)
        state.jobs.finished.connect(self._comparison_done)

    def _comparison_started(self, job: JobState) -> None:
        if job.kind == "compare":
            self.heading.setText(job.message)

    def _comparison_done(self, job: JobState) -> None:
        if job.kind == "compare" and job.status is JobStatus.SUCCEEDED:
            self.show_view(job.result)

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
            rows.append([name, *(number(v, ",.4g") for v in values)])
        ratio_row = ["median ratio (95% CI)", "baseline"]
        for pair in comparison.pairs:
            ratio_row.append("n/a" if pair.median_ratio is None else
                             f"{pair.median_ratio:.3f} ({pair.ci_low:.3f}–{pair.ci_high:.3f})")
        rows.append(ratio_row)
        for energy in comparison.energy:
            rows.append([f"J/inference {energy.device}", *(number(v, ".4g", missing="unavailable")
                                                             for v in energy.joules_per_inference)])
        return rows

    def _fill_table(self) -> None:
        rows = self.rows()
        self.table.setColumnCount(len(rows[0]))
        self.table.setHorizontalHeaderLabels(rows[0])
        fill_table(self.table, rows[1:])

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
        # matplotlib loads on the first export, not at start-up
        from studio.reports.comparison_report import comparison_html

        return comparison_html(self.view.comparison, self.view.latencies_ms)


def _plot(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    plot = titled_plot(title, x_label, y_label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    add_legend(plot, (-10, 10))
    return plot

