"""Optimize: pick pruning, low-rank, quantization and graph settings, see what each will do here, run it in a
worker, then read the fidelity card (and auto mode's candidates) before using the optimized model."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.optimize.recipe import (
    CALIBRATION_METHODS,
    GRAPH_LEVELS,
    PRUNING_IMPORTANCES,
    Recipe,
)
from studio.ui.widgets.tables import fill_table, read_only_table

QUANTIZATION = {"none": "None", "dynamic_int8": "Dynamic INT8", "static_int8": "Static INT8 (QDQ)", "fp16": "FP16",
                "auto": "Auto (measured, within budget)"}
PRUNING = {"none": "None", "unstructured": "Unstructured (L1 sparsity)", "structured": "Structured (channels, heads)"}


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

        self.pruning = _combo(PRUNING)
        self.prune_ratio = _ratio(0.5)
        self.importance = QComboBox()
        self.importance.addItems(PRUNING_IMPORTANCES)
        pruning_form = QFormLayout()
        pruning_form.addRow("Method", self.pruning)
        pruning_form.addRow("Ratio", self.prune_ratio)
        pruning_form.addRow("Importance", self.importance)
        self.low_rank = QCheckBox("SVD-factorize Linear/MatMul weights, keeping rank ratio")
        self.rank_ratio = _ratio(0.5)
        low_rank_form = QFormLayout()
        low_rank_form.addRow(self.low_rank)
        low_rank_form.addRow("Rank ratio", self.rank_ratio)
        self.quantization = _combo(QUANTIZATION)
        self.per_channel = QCheckBox("Per-channel weights")
        self.calibration_method = QComboBox()
        self.calibration_method.addItems(CALIBRATION_METHODS)
        self.calibration_samples = QSpinBox()
        self.calibration_samples.setRange(1, 100_000)
        self.calibration_samples.setValue(32)
        self.budget = QDoubleSpinBox()
        self.budget.setDecimals(4)
        self.budget.setRange(0.0, 1.0)
        self.budget.setSingleStep(0.001)
        self.budget.setValue(0.99)
        quantization_form = QFormLayout()
        quantization_form.addRow("Method", self.quantization)
        quantization_form.addRow("", self.per_channel)
        quantization_form.addRow("Calibration", self.calibration_method)
        quantization_form.addRow("Calibration samples", self.calibration_samples)
        quantization_form.addRow("Min. cosine (budget)", self.budget)
        self.graph = QComboBox()
        self.graph.addItems(GRAPH_LEVELS)
        graph_form = QFormLayout()
        graph_form.addRow("ORT optimization saved", self.graph)

        settings = QVBoxLayout()
        for title, form in (("Pruning", pruning_form), ("Low-rank", low_rank_form), ("Quantization", quantization_form),
                            ("Graph", graph_form)):
            box = QGroupBox(title)
            box.setLayout(form)
            settings.addWidget(box)
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
        settings.addStretch(1)

        self.summary = QLabel("Choose settings and press Optimize. The result is graded against the original model.")
        self.summary.setWordWrap(True)
        self.fidelity = read_only_table(("output", "cosine", "max abs err", "rel L2", "SQNR dB", "top-1 agree"))
        self.sizes = read_only_table(("", "size", "parameters", "MACs"))
        self.candidates = read_only_table(("candidate", "meets budget", "FP32 nodes", "cosine", "median ms", "vs FP32"))
        self.open_button = QPushButton("Open optimized model")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(lambda: self._output and self.open_optimized.emit(self._output))
        result = QVBoxLayout()
        result.addWidget(self.summary)
        result.addWidget(QLabel("Fidelity against the original"))
        result.addWidget(self.fidelity, 1)
        result.addWidget(self.sizes, 1)
        result.addWidget(QLabel("Auto mode: candidates measured on this device"))
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
        for widget in (self.pruning, self.quantization, self.graph):
            widget.currentIndexChanged.connect(self._update)
        self.low_rank.toggled.connect(self._update)
        self._update()

    # -- settings ----------------------------------------------------------------------------------------
    def set_options(self, options: dict) -> None:
        """Greys out what cannot apply to this model and device, with the reason as the tooltip."""
        self._options = options
        for combo, section, names in ((self.pruning, "pruning", PRUNING), (self.quantization, "quantization", QUANTIZATION)):
            for index, method in enumerate(names):
                option = options.get(f"{section}.{method}")
                item = combo.model().item(index)
                item.setEnabled(option is None or option.available)
                item.setToolTip("" if option is None or option.available else option.reason)
            if not combo.model().item(combo.currentIndex()).isEnabled():
                combo.setCurrentIndex(0)
        low_rank = options.get("low_rank")
        self.low_rank.setEnabled(low_rank is None or low_rank.available)
        self.low_rank.setToolTip("" if low_rank is None or low_rank.available else low_rank.reason)
        if not self.low_rank.isEnabled():
            self.low_rank.setChecked(False)
        self._update()

    def recipe(self) -> Recipe:
        data = Recipe().to_dict()
        data["pruning"].update(method=self.pruning.currentData(), ratio=self.prune_ratio.value(),
                               importance=self.importance.currentText())
        if self.low_rank.isChecked():
            data["low_rank"].update(method="rank_ratio", rank_ratio=self.rank_ratio.value())
        data["quantization"].update(method=self.quantization.currentData(), per_channel=self.per_channel.isChecked(),
                                    calibration_method=self.calibration_method.currentText())
        data["calibration"]["samples"] = self.calibration_samples.value()
        if self.quantization.currentData() == "auto":
            data["budget"]["min_cosine"] = self.budget.value()
        data["graph"]["level"] = self.graph.currentText()
        return Recipe.from_dict(data)

    def set_busy(self, busy: bool) -> None:
        self.optimize_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def _update(self) -> None:
        structured = self.pruning.currentData() != "none"
        self.prune_ratio.setEnabled(structured)
        self.importance.setEnabled(self.pruning.currentData() == "structured")
        self.rank_ratio.setEnabled(self.low_rank.isChecked())
        method = self.quantization.currentData()
        self.per_channel.setEnabled(method in ("dynamic_int8", "static_int8"))
        self.calibration_method.setEnabled(method == "static_int8")
        self.calibration_samples.setEnabled(method in ("static_int8", "auto"))
        self.budget.setEnabled(method == "auto")
        chosen = [f"pruning.{self.pruning.currentData()}", f"quantization.{method}"]
        if self.low_rank.isChecked():
            chosen.append("low_rank")
        if self.graph.currentText() != "none":
            chosen.append("graph")
        notes = [note for key in chosen if key in self._options for note in self._options[key].expectations]
        self.expectations.setText("<b>What to expect here</b><br>" + "<br>".join(f"• {n}" for n in notes) if notes else "")

    # -- result --------------------------------------------------------------------------------------------
    def show_result(self, report) -> None:
        data = report.to_dict()
        fidelity = data["fidelity"]
        budget = fidelity["budget"]
        timing = data["before_after"]
        lines = [f"<b>{'Optimized' if data['status'] == 'completed' else 'Accuracy budget NOT met: nothing written'}</b>"]
        if budget:
            lines.append(f"budget {budget['budget']}: {'met' if budget['met'] else 'missed: ' + '; '.join(budget['violations'])}")
        if timing:
            lines.append(f"latency (median, {timing['threads']} thread, side by side): FP32 {timing['baseline']['median_ms']:.3f} ms "
                         f"→ {timing['optimized']['median_ms']:.3f} ms = <b>{timing['speedup']:.2f}×</b>")
        if data["output"]["path"]:
            lines.append(f"written to {data['output']['path']}" + (f" (artifact {data['artifact_id']})" if data["artifact_id"] else ""))
        self.summary.setText("<br>".join(lines))
        fill_table(self.fidelity, [(o["name"], f"{o['cosine']:.5f}", f"{o['max_abs_error']:.3g}", f"{o['relative_l2']:.4f}",
                               "identical" if o["identical"] else f"{o['sqnr_db']:.1f}",
                               "–" if o["top1_agreement"] is None else f"{o['top1_agreement']:.3f}")
                              for o in fidelity["outputs"]])
        sizes = []
        for name in ("original", "optimized"):
            summary = fidelity[name]
            if summary:
                macs = summary.get("macs") or {}
                sizes.append((name, f"{summary['size_bytes'] / 1024:.1f} KiB", f"{summary['parameters']:,}",
                              f"{macs['total']:,}" if macs.get("total") else "unknown"))
        fill_table(self.sizes, sizes)
        auto = data["auto"] or {"candidates": []}
        fill_table(self.candidates, [(c["name"], "yes" if c["meets_budget"] else "no", str(len(c["nodes_in_fp32"])),
                                 "–" if c["cosine"] is None else f"{c['cosine']:.5f}",
                                 "–" if c["latency_ms"] is None else f"{c['latency_ms']:.4f}",
                                 "–" if c["speedup_vs_fp32"] is None else f"{c['speedup_vs_fp32']:.2f}×")
                                for c in auto["candidates"]])
        self._output = data["output"]["path"]
        self._artifact = data["artifact_id"]
        self.open_button.setEnabled(bool(self._output))
        self.export_button.setEnabled(bool(self._artifact))


def _combo(choices: dict[str, str]) -> QComboBox:
    combo = QComboBox()
    for value, text in choices.items():
        combo.addItem(text, value)
    return combo


def _ratio(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.05, 0.95)
    box.setSingleStep(0.05)
    box.setValue(value)
    return box
