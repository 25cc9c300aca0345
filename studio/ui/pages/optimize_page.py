"""Optimize: pick pruning, low-rank, quantization and graph settings, see what each will do here, run it in a
worker, then read the fidelity card (and auto mode's candidates) before using the optimized model.

The settings are a RecipeForm, made from the passes' own knob declarations: this page names none of them."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.optimize.recipe import Recipe
from studio.present.headlines import optimization_headline
from studio.present.optimization import FIDELITY_COLUMNS, budget_lines, fidelity_rows
from studio.ui.pages.recipe_form import RecipeForm
from studio.ui.widgets.tables import fill_table, read_only_table
from studio.ui.widgets.theme import alert_colour


class OptimizePage(QWidget):
    optimize_requested = Signal()
    cancel_requested = Signal()
    open_optimized = Signal(str)
    export_artifact = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._options: dict = {}
        self._output: str | None = None
        self._artifact: int | None = None

        self.form = RecipeForm()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.form)
        settings = QVBoxLayout()
        settings.addWidget(scroll, 1)
        self.expectations = QLabel()
        self.expectations.setWordWrap(True)
        self.expectations.setObjectName("expectations")
        settings.addWidget(self.expectations)
        self.optimize_button = QPushButton("Optimize")
        self.optimize_button.clicked.connect(self.optimize_requested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.optimize_button)
        buttons.addWidget(self.cancel_button)
        settings.addLayout(buttons)

        self.summary = QLabel("Choose settings and press Optimize. The result is graded against the original model.")
        self.summary.setWordWrap(True)
        self.fidelity = read_only_table(FIDELITY_COLUMNS)
        self.sizes = read_only_table(("", "size", "parameters", "MACs"))
        self.candidates = read_only_table(("candidate", "meets budget", "FP32 nodes", "cosine", "median ms", "vs FP32"))
        self.open_button = QPushButton("Open optimized model")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(lambda: self._output and self.open_optimized.emit(self._output))
        result = QVBoxLayout()
        result.addWidget(self.summary)
        self.fidelity_title = QLabel("Fidelity against the original")
        result.addWidget(self.fidelity_title)
        result.addWidget(self.fidelity, 1)
        result.addWidget(self.sizes, 1)
        self.candidates_title = QLabel("Auto mode: candidates measured on this device")
        result.addWidget(self.candidates_title)
        result.addWidget(self.candidates, 2)
        self.export_button = QPushButton("Export bundle…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(lambda: self._artifact and self.export_artifact.emit(self._artifact))
        result_buttons = QHBoxLayout()
        result_buttons.addWidget(self.open_button)
        result_buttons.addWidget(self.export_button)
        result.addLayout(result_buttons)

        layout = QHBoxLayout(self)
        layout.addLayout(settings, 2)
        layout.addLayout(result, 3)
        self.form.changed.connect(self._update)
        self._update()

    # -- settings ----------------------------------------------------------------------------------------
    def set_options(self, options: dict) -> None:
        """Greys out what cannot apply to this model and device, with the reason as the tooltip."""
        self._options = options
        self.form.set_options(options)

    def recipe(self) -> Recipe:
        return self.form.recipe()

    def set_busy(self, busy: bool) -> None:
        self.optimize_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def _update(self) -> None:
        notes = [note for key in self.form.chosen_options() if key in self._options
                 for note in self._options[key].expectations]
        self.expectations.setText("<b>What to expect here</b><br>" + "<br>".join(f"• {n}" for n in notes) if notes else "")

    # -- result --------------------------------------------------------------------------------------------
    def show_result(self, report) -> None:
        data = report.to_dict()
        fidelity = data["fidelity"]
        timing = data["before_after"]
        headline = optimization_headline(report)
        lines = [f"<b>{escape(headline)}</b>" if report.result.accepted
                 else f"<b><span style='color:{alert_colour('error')}'>{escape(headline)}</span></b>"]
        lines += [escape(line) for line in budget_lines(fidelity)]
        if timing:
            lines.append(f"latency (median, {timing['threads']} thread, side by side): FP32 {timing['baseline']['median_ms']:.3f} ms "
                         f"→ {timing['optimized']['median_ms']:.3f} ms = <b>{timing['speedup']:.2f}×</b>")
        if data["output"]["path"]:
            lines.append(f"written to {escape(data['output']['path'])}"
                         + (f" (artifact {data['artifact_id']})" if data["artifact_id"] else ""))
        else:
            lines.append("Nothing written and nothing saved: a rejected model cannot be opened or exported here "
                         f"(kept for inspection only at {escape(data['optimized_model'])})")
        self.summary.setText("<br>".join(lines))
        self.fidelity_title.setText(f"Fidelity against the original, on {fidelity['samples']} "
                                    f"{'synthetic' if (fidelity.get('data') or {}).get('synthetic') else 'real'} inputs")
        fill_table(self.fidelity, fidelity_rows(fidelity, "–"))
        sizes = []
        for name in ("original", "optimized"):
            summary = fidelity[name]
            if summary:
                macs = summary.get("macs") or {}
                sizes.append((name, f"{summary['size_bytes'] / 1024:.1f} KiB", f"{summary['parameters']:,}",
                              f"{macs['total']:,}" if macs.get("total") else "unknown"))
        fill_table(self.sizes, sizes)
        auto = data["auto"] or {"candidates": []}
        for widget in (self.candidates_title, self.candidates):  # only auto mode has candidates to show
            widget.setVisible(bool(auto["candidates"]))
        fill_table(self.candidates, [(c["name"], "yes" if c["meets_budget"] else "no", str(len(c["nodes_in_fp32"])),
                                 "–" if c["cosine"] is None else f"{c['cosine']:.5f}",
                                 "–" if c["latency_ms"] is None else f"{c['latency_ms']:.4f}",
                                 "–" if c["speedup_vs_fp32"] is None else f"{c['speedup_vs_fp32']:.2f}×")
                                for c in auto["candidates"]])
        self._output = data["output"]["path"]
        self._artifact = data["artifact_id"]
        accepted = report.result.accepted
        self.open_button.setEnabled(accepted and bool(self._output))
        self.export_button.setEnabled(accepted and bool(self._artifact))

