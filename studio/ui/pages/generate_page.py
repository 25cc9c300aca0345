"""Generate: time to first token, time per token and tokens/s of a local Hugging Face causal LM, live.

One mode at a time, as the CLI's generate-bench: plain generation (live per-token latency), prefix
reuse (a shared system prompt) or serving (Poisson arrivals with batched decode). Results land in
History like any run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from core.latency_stats import LatencyStats
from engine.generative.results import GenerationResult
from engine.measure.samples import SampleBuffer
from studio import usecases
from studio.present.headlines import generation_headlines
from studio.ui.job_runner import JobRunner
from studio.ui.pages.dashboard import REFRESH_MS, MetricTile
from studio.ui.state import AppState, JobState, JobStatus
from studio.ui.widgets.figures import NOT_YET, figure
from studio.ui.widgets.forms import button, form, spin_box
from studio.ui.widgets.plots import titled_plot
from studio.ui.widgets.tables import fill_table, read_only_table
from studio.ui.widgets.theme import SERIES_COLOURS

MODES = {"generation": "Generation", "prefix_reuse": "Prefix reuse (shared system prompt)",
         "serving": "Serving (Poisson arrivals, batched decode)"}


class GeneratePage(QWidget):
    def __init__(self, state: AppState, runner: JobRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.runner = runner
        self.samples: SampleBuffer | None = None
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a folder with config.json and *.safetensors")
        browse = button("Browse…", self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.mode = QComboBox()
        for value, text in MODES.items():
            self.mode.addItem(text, value)
        self.prompt_tokens = spin_box(1, 100_000, 128)
        self.new_tokens = spin_box(1, 100_000, 64)
        self.batch = spin_box(1, 1024, 1)
        self.requests = spin_box(1, 100_000, 5)
        self.use_cache = QCheckBox("KV cache")
        self.use_cache.setChecked(True)
        self.shared_prefix = spin_box(1, 100_000, 256)
        self.rate = spin_box(0.01, 10_000.0, 1.0, suffix=" requests/s")
        self.duration = spin_box(0.1, 3600.0, 10.0, suffix=" s")
        self.dtype = QComboBox()
        self.dtype.addItems(["float32", "bfloat16", "float16"])
        self.weights = QComboBox()
        self.weights.addItem("Full precision", None)
        self.weights.addItem("INT8 weight-only (dynamic)", "int8-dynamic")
        self.weights.addItem("NF4 weight-only (bitsandbytes)", "nf4")
        self.threads = spin_box(0, 256, 0, special="torch default")
        fields = form((("Model folder", folder_row), ("Mode", self.mode), ("Prompt tokens", self.prompt_tokens),
                       ("New tokens", self.new_tokens), ("Batch", self.batch), ("Requests", self.requests),
                       ("", self.use_cache), ("Shared prefix tokens", self.shared_prefix), ("Arrival rate", self.rate),
                       ("Arrivals for", self.duration), ("Dtype", self.dtype), ("Weights", self.weights),
                       ("Threads", self.threads)))
        self.run_button = button("Run generation benchmark", self.start)
        self.cancel_button = button("Cancel", lambda: state.jobs.cancel("generate"), enabled=False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        settings = QGroupBox("Settings")
        settings_layout = QVBoxLayout(settings)
        settings_layout.addLayout(fields)
        settings_layout.addLayout(buttons)
        settings_layout.addStretch(1)

        self.tiles = {name: MetricTile(title) for name, title in (
            ("ttft", "TTFT p50"), ("tpot", "TPOT p50"), ("decode", "Decode tokens/s"), ("memory", "Peak RSS"),
            ("energy", "Energy / token"))}
        tiles = QGridLayout()  # three to a row: five in one row made the window wider than 1280 px
        for index, tile in enumerate(self.tiles.values()):
            tiles.addWidget(tile, index // 3, index % 3)
        for column in range(3):
            tiles.setColumnStretch(column, 1)
        self.plot = titled_plot("Time per step (prefill and decode)", "step", "ms")
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
        state.jobs.finished.connect(self._job_finished)

    def request(self) -> usecases.GenerateRequest:
        mode = self.mode.currentData()
        return usecases.GenerateRequest(
            model_dir=self.folder.text().strip(), prompt_tokens=self.prompt_tokens.value(),
            new_tokens=self.new_tokens.value(), batch=self.batch.value(), requests=self.requests.value(),
            use_cache=self.use_cache.isChecked(),
            shared_prefix=self.shared_prefix.value() if mode == "prefix_reuse" else None,
            rate=self.rate.value() if mode == "serving" else None,
            duration_s=self.duration.value() if mode == "serving" else None,
            dtype=self.dtype.currentText(), threads=self.threads.value() or None, db_url=self.state.db_url,
            weight_quantization=self.weights.currentData(),
        )

    def start(self) -> None:
        if self.state.jobs.is_running("generate"):
            return
        request = self.request()
        samples = self.started()
        self.runner.start("generate", lambda cancel, progress: usecases.benchmark_generation(
            request, cancel=cancel, progress=progress, live=samples), live=samples)

    def started(self) -> SampleBuffer:
        self.samples = SampleBuffer()
        self.step_curve.setData([], [])
        self.status.setText("Loading the model and running…")
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.timer.start()
        return self.samples

    def _job_finished(self, job: JobState) -> None:
        if job.kind == "generate":
            self.finished(job.result if job.status is JobStatus.SUCCEEDED else None, job.error)

    def finished(self, report: usecases.GenerateReport | None = None, error: str | None = None) -> None:
        self._refresh()
        self.timer.stop()
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if report is None:
            self.status.setText(f"Stopped: {error}" if error else "Stopped")
            return
        self._show(report)

    def _refresh(self) -> None:
        if self.samples is not None and len(self.samples):
            latencies = self.samples.snapshot()[1] / 1e6
            self.step_curve.setData(np.arange(latencies.size), latencies, skipFiniteCheck=True)

    def _show(self, report: usecases.GenerateReport) -> None:
        result = report.result
        saved = f"saved as run {report.run_id}" if report.run_id else "not saved"
        self.status.setText(f"{MODES[report.request.mode]}: {result.status}; "
                            f"{report.generated_tokens:,} tokens generated; {saved}")
        figures = _headline(result)
        self.tiles["ttft"].show_value(_ms(figures.ttft.p50_ms), "first token after the prompt arrives")
        self.tiles["tpot"].show_value(_ms(figures.tpot.p50_ms) if figures.tpot else NOT_YET,
                                      "per generated token after the first")
        self.tiles["decode"].show_value(figure(figures.tokens_per_s, ",.1f"), figures.tokens_per_s_means)
        peak = result.memory.peak_rss_bytes
        self.tiles["memory"].show_value(f"{peak / 2**20:,.0f} MiB" if peak else NOT_YET,
                                        "process, kernel high-water mark")
        self.tiles["energy"].show_value(*_energy_per_token(report))
        rows = _result_rows(report)
        quantized = report.quantization
        if quantized is not None:
            rows.append((f"perplexity ({quantized.scheme})", f"{quantized.perplexity_before.value:.3f} → "
                         f"{quantized.perplexity_after.value:.3f} ({quantized.perplexity_increase:+.2%})"))
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


@dataclass(frozen=True)
class _Headline:
    ttft: LatencyStats
    tpot: LatencyStats | None
    tokens_per_s: float | None
    tokens_per_s_means: str


def _headline(result) -> _Headline:
    if isinstance(result, GenerationResult):
        summary = result.summary
        return _Headline(summary.ttft, summary.tpot, summary.decode_tokens_per_s, "decode steps")
    if _is_prefix_reuse(result):
        return _Headline(result.ttft_with, None, None, "all requests served")
    return _Headline(result.ttft, result.tpot, result.throughput_tokens_per_s, "all requests served")


def _result_rows(report: usecases.GenerateReport) -> list[tuple[str, str]]:
    """The figures the console shows for this mode, written the same way; prefix reuse adds whether it was exact."""
    rows = [(row.label, f"{row.value} {row.unit}".rstrip()) for row in generation_headlines(report)]
    if _is_prefix_reuse(report.result):
        rows.append(("outputs identical with reuse", str(all(report.result.outputs_identical))))
    return rows


def _is_prefix_reuse(result) -> bool:
    # Lazily: the module imports torch, which a finished generation run has loaded already.
    from engine.generative.prefix_reuse import PrefixReuseResult

    return isinstance(result, PrefixReuseResult)


def _energy_per_token(report: usecases.GenerateReport) -> tuple[str, str]:
    telemetry = report.telemetry  # the telemetry summary is a document of the use case, not a typed result
    if telemetry is None:
        return NOT_YET, "telemetry was off"
    measured = [(device, f["energy_j"]) for device, f in telemetry["devices"].items() if f["energy_j"] is not None]
    if measured and report.generated_tokens:
        joules = sum(j for _, j in measured)
        return f"{joules / report.generated_tokens * 1e3:.2f} mJ", ", ".join(d for d, _ in measured)
    reasons = "; ".join(f"{u['device']}: {u['reason']}" for u in telemetry["unavailable"] if u["name"] in ("energy", "*"))
    return "unavailable", reasons


def _ms(value: float | None) -> str:
    return figure(value, ".2f", " ms")
