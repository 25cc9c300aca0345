"""Generate: time to first token, time per token and tokens/s of a local Hugging Face causal LM, live.

One mode at a time, as the CLI's generate-bench: plain generation (live per-token latency), prefix
reuse (a shared system prompt) or serving (Poisson arrivals with batched decode). Results land in
History like any run.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.measure.samples import SampleBuffer
from studio.ui.pages.dashboard import REFRESH_MS, MetricTile
from studio.ui.widgets.tables import fill_table, read_only_table
from studio.ui.widgets.theme import SERIES_COLOURS, plot_background, plot_foreground
from studio.usecases.generation import GenerateRequest

MODES = {"generation": "Generation", "prefix_reuse": "Prefix reuse (shared system prompt)",
         "serving": "Serving (Poisson arrivals, batched decode)"}


class GeneratePage(QWidget):
    run_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.samples: SampleBuffer | None = None
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a folder with config.json and *.safetensors")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.mode = QComboBox()
        for value, text in MODES.items():
            self.mode.addItem(text, value)
        self.prompt_tokens = _spin(1, 100_000, 128)
        self.new_tokens = _spin(1, 100_000, 64)
        self.batch = _spin(1, 1024, 1)
        self.requests = _spin(1, 100_000, 5)
        self.use_cache = QCheckBox("KV cache")
        self.use_cache.setChecked(True)
        self.shared_prefix = _spin(1, 100_000, 256)
        self.rate = QDoubleSpinBox()
        self.rate.setRange(0.01, 10_000.0)
        self.rate.setValue(1.0)
        self.rate.setSuffix(" requests/s")
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0.1, 3600.0)
        self.duration.setValue(10.0)
        self.duration.setSuffix(" s")
        self.dtype = QComboBox()
        self.dtype.addItems(["float32", "bfloat16", "float16"])
        self.weights = QComboBox()
        self.weights.addItem("Full precision", None)
        self.weights.addItem("INT8 weight-only (dynamic)", "int8-dynamic")
        self.weights.addItem("NF4 weight-only (bitsandbytes)", "nf4")
        self.threads = _spin(0, 256, 0)
        self.threads.setSpecialValueText("torch default")
        form = QFormLayout()
        form.addRow("Model folder", folder_row)
        form.addRow("Mode", self.mode)
        form.addRow("Prompt tokens", self.prompt_tokens)
        form.addRow("New tokens", self.new_tokens)
        form.addRow("Batch", self.batch)
        form.addRow("Requests", self.requests)
        form.addRow("", self.use_cache)
        form.addRow("Shared prefix tokens", self.shared_prefix)
        form.addRow("Arrival rate", self.rate)
        form.addRow("Arrivals for", self.duration)
        form.addRow("Dtype", self.dtype)
        form.addRow("Weights", self.weights)
        form.addRow("Threads", self.threads)
        self.run_button = QPushButton("Run generation benchmark")
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        settings = QGroupBox("Settings")
        settings_layout = QVBoxLayout(settings)
        settings_layout.addLayout(form)
        settings_layout.addLayout(buttons)
        settings_layout.addStretch(1)

        self.tiles = {name: MetricTile(title) for name, title in (
            ("ttft", "TTFT p50"), ("tpot", "TPOT p50"), ("decode", "Decode tokens/s"), ("memory", "Peak RSS"),
            ("energy", "Energy / token"))}
        tiles = QGridLayout()
        for column, tile in enumerate(self.tiles.values()):
            tiles.addWidget(tile, 0, column)
            tiles.setColumnStretch(column, 1)
        self.plot = pg.PlotWidget(background=plot_background())
        self.plot.setTitle("Time per step (prefill and decode)", color=plot_foreground())
        self.plot.setLabel("left", "ms")
        self.plot.setLabel("bottom", "step")
        self.step_curve = self.plot.plot(pen=pg.mkPen(SERIES_COLOURS[0]), symbol="o", symbolSize=3,
                                         symbolBrush=SERIES_COLOURS[0])
        self.status = QLabel("Choose a model folder and press Run.")
        self.status.setWordWrap(True)
        self.results = read_only_table(("figure", "value"))
        right = QVBoxLayout()
        right.addWidget(self.status)
        right.addLayout(tiles)
        right.addWidget(self.plot, 3)
        right.addWidget(self.results, 2)
        layout = QHBoxLayout(self)
        layout.addWidget(settings, 2)
        layout.addLayout(right, 5)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._refresh)
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self._mode_changed()

    def request(self, db_url: str | None) -> GenerateRequest:
        mode = self.mode.currentData()
        return GenerateRequest(
            model_dir=self.folder.text().strip(), prompt_tokens=self.prompt_tokens.value(),
            new_tokens=self.new_tokens.value(), batch=self.batch.value(), requests=self.requests.value(),
            use_cache=self.use_cache.isChecked(),
            shared_prefix=self.shared_prefix.value() if mode == "prefix_reuse" else None,
            rate=self.rate.value() if mode == "serving" else None,
            duration_s=self.duration.value() if mode == "serving" else None,
            dtype=self.dtype.currentText(), threads=self.threads.value() or None, db_url=db_url,
            weight_quantization=self.weights.currentData(),
        )

    def started(self) -> SampleBuffer:
        self.samples = SampleBuffer()
        self.step_curve.setData([], [])
        self.status.setText("Loading the model and running…")
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.timer.start()
        return self.samples

    def finished(self, report=None, error: str | None = None) -> None:
        self._refresh()
        self.timer.stop()
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if report is None:
            self.status.setText(f"Stopped: {error}" if error else "Stopped")
            return
        self._show(report.to_dict())

    def _refresh(self) -> None:
        if self.samples is not None and len(self.samples):
            latencies = self.samples.snapshot()[1] / 1e6
            self.step_curve.setData(np.arange(latencies.size), latencies, skipFiniteCheck=True)

    def _show(self, data: dict) -> None:
        mode = data["mode"]
        saved = f"saved as run {data['run_id']}" if data["run_id"] else "not saved"
        self.status.setText(f"{MODES[mode]}: {data['status']}; {data['generated_tokens']:,} tokens generated; {saved}")
        summary = data["summary"] if mode == "generation" else data
        if mode == "prefix_reuse":
            ttft, tpot = data["ttft_with_reuse_ms"], None
        else:
            ttft, tpot = summary["ttft_ms"], summary["tpot_ms"]
        self.tiles["ttft"].show_value(_ms(ttft["p50"]), "first token after the prompt arrives")
        self.tiles["tpot"].show_value(_ms(tpot["p50"]) if tpot else "–", "per generated token after the first")
        decode = summary.get("decode_tokens_per_s") if mode == "generation" else data.get("throughput_tokens_per_s")
        self.tiles["decode"].show_value("–" if decode is None else f"{decode:,.1f}",
                                        "decode steps" if mode == "generation" else "all requests served")
        peak = (data.get("memory") or {}).get("peak_rss_bytes")
        self.tiles["memory"].show_value("–" if not peak else f"{peak / 2**20:,.0f} MiB", "process, kernel high-water mark")
        self.tiles["energy"].show_value(*_energy_per_token(data))
        rows = _result_rows(mode, data)
        quantized = data.get("weight_quantization")
        if quantized:
            rows.append((f"perplexity ({quantized['scheme']})", f"{quantized['perplexity_before']['perplexity']:.3f} → "
                         f"{quantized['perplexity_after']['perplexity']:.3f} ({quantized['perplexity_increase']:+.2%})"))
        fill_table(self.results, rows)

    def _mode_changed(self) -> None:
        mode = self.mode.currentData()
        self.shared_prefix.setEnabled(mode == "prefix_reuse")
        self.rate.setEnabled(mode == "serving")
        self.duration.setEnabled(mode == "serving")
        self.batch.setEnabled(mode == "generation")
        self.use_cache.setEnabled(mode == "generation")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Hugging Face model folder")
        if folder:
            self.folder.setText(folder)


def _result_rows(mode: str, data: dict) -> list[tuple[str, str]]:
    if mode == "prefix_reuse":
        return [("TTFT p50 without reuse", _ms(data["ttft_without_reuse_ms"]["p50"])),
                ("TTFT p50 with reuse", _ms(data["ttft_with_reuse_ms"]["p50"])),
                ("TTFT speedup", "–" if data["ttft_speedup"] is None else f"{data['ttft_speedup']:.2f}×"),
                ("shared prefix prefilled once", _ms(data["prefix_prefill_ms"])),
                ("outputs identical with reuse", str(all(data["outputs_identical"])))]
    if mode == "serving":
        return [("throughput", f"{data['throughput_tokens_per_s'] or 0:,.1f} tokens/s"),
                ("TTFT p50 / p99", f"{_ms(data['ttft_ms']['p50'])} / {_ms(data['ttft_ms']['p99'])}"),
                ("TPOT p99", _ms(data["tpot_ms"]["p99"])), ("queueing p99", _ms(data["queue_ms"]["p99"])),
                ("mean decode batch", f"{data['mean_batch']:.2f}"), ("requests", str(data["requests"]))]
    summary = data["summary"]
    return [("TTFT p50 / p99", f"{_ms(summary['ttft_ms']['p50'])} / {_ms(summary['ttft_ms']['p99'])}"),
            ("TPOT p50 / p99", f"{_ms(summary['tpot_ms']['p50'])} / {_ms(summary['tpot_ms']['p99'])}"),
            ("prefill tokens/s", f"{summary['prefill_tokens_per_s'] or 0:,.1f}"),
            ("decode tokens/s", f"{summary['decode_tokens_per_s'] or 0:,.1f}"),
            ("output tokens/s", f"{summary['output_tokens_per_s'] or 0:,.1f}")]


def _energy_per_token(data: dict) -> tuple[str, str]:
    telemetry = data["telemetry"]
    if telemetry is None:
        return "–", "telemetry was off"
    measured = [(device, f["energy_j"]) for device, f in telemetry["devices"].items() if f["energy_j"] is not None]
    if measured and data["generated_tokens"]:
        joules = sum(j for _, j in measured)
        return f"{joules / data['generated_tokens'] * 1e3:.2f} mJ", ", ".join(d for d, _ in measured)
    reasons = "; ".join(f"{u['device']}: {u['reason']}" for u in telemetry["unavailable"] if u["name"] in ("energy", "*"))
    return "unavailable", reasons


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} ms"


def _spin(low: int, high: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    return box
