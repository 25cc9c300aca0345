"""The live dashboard: metric tiles and four plots on the run's time axis, fed from snapshots by a ~30 Hz timer.

Plot items are created once and updated with setData (peak downsampling, clip to view), so a
refresh stays cheap however long the run (DESIGN §5). A metric this machine cannot measure
shows "unavailable" with its reason in place of its plot, never a flat zero line.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.measure.samples import SampleBuffer
from profilers import metrics
from profilers.metrics import MetricKind, MetricSpec, UnavailableMetric
from profilers.ring_buffer import MetricSeries
from profilers.sampler import TelemetrySnapshot
from profilers.throttle import detect_throttling
from studio.present.headlines import outcome_line
from studio.present.live_metrics import (
    LatencyTracker,
    LatencyView,
    in_view,
    power_from_energy,
)
from studio.ui.state import AppState, JobState, JobStatus
from studio.ui.widgets.figures import figure
from studio.ui.widgets.plots import add_legend
from studio.ui.widgets.theme import SERIES_COLOURS, plot_background, plot_foreground
from studio.usecases import LiveFeed

REFRESH_MS = 33
TILE_DETAIL_CHARS = 48  # the full text is in the tooltip and, for unavailable metrics, beside the plots
PLOT_MIN_HEIGHT = 90
LEFT_AXIS_WIDTH = 64
UNAVAILABLE_HEIGHT = 90
QWIDGETSIZE_MAX = (1 << 24) - 1
THROTTLE_CHECK_EVERY = 30  # refreshes (about once a second)
TILE_EVERY = 6  # refreshes: the tiles' figures are read, not watched, so ~5 Hz is plenty and saves a repaint
X_GROWTH = 1.5  # while following a run, the time axis jumps ahead by this factor instead of scrolling every frame
MIN_X_SPAN_S = 10.0
THROTTLE_OVERLAP_NS = 2_000_000_000  # re-check a little of the last window, so events across the boundary join up
TEMPERATURE_METRICS = (metrics.TEMPERATURE,)
CLOCK_METRICS = (metrics.SM_CLOCK, metrics.FREQUENCY)


class MetricTile(QFrame):
    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.value = QLabel("–")
        self.value.setStyleSheet("font-size: 18pt; font-weight: 600;")
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet("font-size: 8pt;")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(title))
        layout.addWidget(self.value)
        layout.addWidget(self.detail)

    def show_value(self, text: str, detail: str = "") -> None:
        self.value.setText(text)
        short = detail if len(detail) <= TILE_DETAIL_CHARS else detail[: TILE_DETAIL_CHARS - 1].rstrip() + "…"
        self.detail.setText(short)
        self.setToolTip(detail)


class PlotPanel(QStackedWidget):
    """A plot, or in its place the reason the metric is unavailable."""

    def __init__(self, title: str, unit: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.plot = pg.PlotWidget(background=plot_background())
        self.plot.setTitle(title, color=plot_foreground())
        self.plot.setLabel("left", unit)
        self.plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)  # equal widths keep the stacked plots' time axes aligned
        # No grid on live plots: its translucent lines cost ~85 ms a frame under software rendering.
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")  # curves also arrive pre-decimated: see live_metrics.in_view
        add_legend(self.plot, (-10, 10))
        self.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.reason.setObjectName("unavailableReason")
        self.addWidget(self.plot)
        self.addWidget(self.reason)
        self.curves: dict[str, pg.PlotDataItem] = {}

    def curve(self, name: str, **style) -> pg.PlotDataItem:
        if name not in self.curves:
            colour = SERIES_COLOURS[len(self.curves) % len(SERIES_COLOURS)]
            self.curves[name] = self.plot.plot(name=name, pen=pg.mkPen(style.pop("colour", colour), width=style.pop("width", 1)), **style)
        return self.curves[name]

    def show_unavailable(self, title: str, reasons: list[str]) -> None:
        self.reason.setText(f"<b>{title}: unavailable</b><br>" + "<br>".join(reasons))
        self.setCurrentWidget(self.reason)
        self.setMaximumHeight(UNAVAILABLE_HEIGHT)  # a few lines of text; the plots that have data get the room

    def show_plot(self) -> None:
        self.setCurrentWidget(self.plot)
        self.setMaximumHeight(QWIDGETSIZE_MAX)


class Dashboard(QWidget):
    """Follows the state's benchmark job live, and shows a saved run when one is opened."""

    def __init__(self, state: AppState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.feed: LiveFeed | None = None
        self.tracker = LatencyTracker()
        self._last_view: LatencyView | None = None
        self._telemetry: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        self._drawn: dict[tuple[str, str], tuple] = {}
        self._throttle_checked_ns: int | None = None
        self._refreshes = 0
        self._shaded: set[tuple[str, int]] = set()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

        self.tiles = {name: MetricTile(title) for name, title in (
            ("p50", "p50 latency"), ("p99", "p99 latency"), ("throughput", "Throughput"),
            ("power", "Power"), ("energy", "Energy / inference"), ("temperature", "Temperature"))}
        tiles = QGridLayout()
        for column, tile in enumerate(self.tiles.values()):
            tiles.addWidget(tile, 0, column)
            tiles.setColumnStretch(column, 1)

        self.latency = PlotPanel("Latency per iteration", "ms")
        self.throughput = PlotPanel("Throughput (rolling)", "items/s")
        self.power = PlotPanel("Power", "W")
        self.temperature = PlotPanel("Temperature", "°C")
        self.clock = PlotPanel("Clock", "MHz")
        self.panels = (self.latency, self.throughput, self.power, self.temperature, self.clock)
        for panel in self.panels[1:]:
            panel.plot.setXLink(self.latency.plot)
        for panel in self.panels[:-1]:
            panel.plot.hideAxis("bottom")  # one shared time axis, at the bottom: fewer axes to redraw
        self.panels[-1].plot.setLabel("bottom", "run time", units="s")
        self.view_box = self.latency.plot.getViewBox()
        self.view_box.disableAutoRange(axis=pg.ViewBox.XAxis)
        self.view_box.sigRangeChangedManually.connect(self._stop_following)
        self.following = True
        self._x_max = MIN_X_SPAN_S
        self.latency_curve = self.latency.curve("latency", colour=SERIES_COLOURS[0])
        self.p50_curve = self.latency.curve("rolling p50", colour=SERIES_COLOURS[2], width=2)
        self.p99_curve = self.latency.curve("rolling p99", colour=SERIES_COLOURS[3], width=2)
        self.throughput_curve = self.throughput.curve("items/s")
        self.latency.plot.getViewBox().sigXRangeChanged.connect(self._draw_in_view)

        self.status = QLabel("No run yet: press Run (Ctrl+R).")
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addLayout(tiles)
        for panel, stretch in zip(self.panels, (3, 2, 2, 2, 2)):
            layout.addWidget(panel, stretch)
        state.jobs.started.connect(self._job_started)
        state.jobs.finished.connect(self._job_finished)

    def _job_started(self, job: JobState) -> None:
        if job.kind == "run":
            self.attach(job.live, self.state.run_settings.batch, job.message)

    def _job_finished(self, job: JobState) -> None:
        if job.kind == "run":
            self.detach(outcome_line(job.result) if job.status is JobStatus.SUCCEEDED else f"failed: {job.error}")
        elif job.kind == "open run" and job.status is JobStatus.SUCCEEDED:
            self.show_saved(job.result)

    # -- life cycle ------------------------------------------------------------------------------------------
    def attach(self, feed: LiveFeed, batch_size: int, title: str) -> None:
        """Starts showing a run that is about to begin; the previous run's curves are cleared."""
        self.feed = feed
        self.tracker = LatencyTracker(batch_size)
        self.following = True
        self._x_max = MIN_X_SPAN_S
        self.view_box.setXRange(0, self._x_max, padding=0)
        self._last_view = None
        self._telemetry = {}
        self._drawn = {}
        self._throttle_checked_ns = None
        self._refreshes = 0
        self._shaded.clear()
        for panel in self.panels:
            for curve in panel.curves.values():
                curve.setData([], [])
            for item in [i for i in panel.plot.items() if isinstance(i, pg.LinearRegionItem)]:
                panel.plot.removeItem(item)
        self.status.setText(title)
        self.timer.start()

    def detach(self, final_status: str) -> None:
        """The run ended: one last refresh with everything it measured, then the timer stops."""
        self.refresh(final=True)
        self.timer.stop()
        self.status.setText(final_status)

    def show_saved(self, data) -> None:
        """A run from storage, drawn by the same code as a live one."""
        record = data.record
        feed = LiveFeed()
        feed.samples = SampleBuffer.from_arrays(data.latency.timestamps_ns, data.latency.latencies_ns)
        feed.sampler = _SavedTelemetry(data)
        batch = int(data.latency.batches[0]) if len(data.latency.batches) else 1
        title = f"Saved run {record.id} ({record.status}) of {record.model.path.rsplit('/', 1)[-1] if record.model else '?'}"
        self.attach(feed, batch, title)
        self.detach(title + f", {len(data.latency):,} iterations")

    # -- refresh ---------------------------------------------------------------------------------------------
    def refresh(self, final: bool = False) -> None:
        if self.feed is None:
            return
        self._refreshes += 1
        view = self.tracker.update(self.feed.samples)
        self._last_view = view
        self._follow(view)
        tiles = final or self._refreshes % TILE_EVERY == 1
        rate = view.recent_throughput_per_s
        if tiles:
            self.tiles["p50"].show_value(figure(view.recent_p50_ms, ".3f", " ms"), "last 1000 iterations")
            self.tiles["p99"].show_value(figure(view.recent_p99_ms, ".3f", " ms"), "last 1000 iterations")
            self.tiles["throughput"].show_value(figure(rate, ",.0f", "/s"), "items per second, last 0.5 s")
        sampler = self.feed.sampler
        if sampler is not None and self.tracker.origin_ns is not None:
            self._show_telemetry(sampler.snapshot(), rate, tiles)
        self._draw_in_view()

    def _show_telemetry(self, snapshot, items_per_s: float | None, tiles: bool) -> None:
        origin = self.tracker.origin_ns
        power = self._device_series(snapshot, (metrics.POWER,), derive_power=True)
        temperature = self._device_series(snapshot, TEMPERATURE_METRICS)
        clocks = self._device_series(snapshot, CLOCK_METRICS)
        unavailable = snapshot.unavailable
        for panel, series, names, title in ((self.power, power, (metrics.POWER, metrics.ENERGY), "Power"),
                                            (self.temperature, temperature, TEMPERATURE_METRICS, "Temperature"),
                                            (self.clock, clocks, CLOCK_METRICS, "Clock")):
            if not series:
                reasons = [f"{u.device}: {u.reason}" for u in unavailable if u.name in (*names, "*")]
                panel.show_unavailable(title, reasons or ["no source on this machine reports it"])
                continue
            panel.show_plot()
            self._telemetry[title.lower()] = {device: ((t_ns - origin) / 1e9, values) for device, (t_ns, values) in series.items()}
        if tiles:
            self._show_telemetry_tiles(power, temperature, unavailable, items_per_s)
        if self._refreshes % THROTTLE_CHECK_EVERY == 0:
            self._shade_throttling(snapshot)

    def _show_telemetry_tiles(self, power, temperature, unavailable, items_per_s: float | None) -> None:
        watts = sum(values[-1] for _, values in power.values() if len(values))
        self.tiles["power"].show_value(f"{watts:.1f} W" if power else "unavailable",
                                       ", ".join(power) if power else _reason(unavailable, metrics.ENERGY))
        if power and items_per_s:
            self.tiles["energy"].show_value(f"{watts / items_per_s * 1e3:.2f} mJ", "power ÷ throughput, now")
        else:
            self.tiles["energy"].show_value("unavailable" if not power else "–", _reason(unavailable, metrics.ENERGY) if not power else "")
        if temperature:
            peak = max(float(values[-1]) for _, values in temperature.values() if len(values))
            self.tiles["temperature"].show_value(f"{peak:.0f} °C", "hottest sensor now")
        else:
            self.tiles["temperature"].show_value("unavailable", _reason(unavailable, metrics.TEMPERATURE))

    def _follow(self, view: LatencyView) -> None:
        """While following, the time axis jumps ahead in steps: redrawing axes every frame is what costs most."""
        if self.view_box.autoRangeEnabled()[0]:  # the plot's "A" button: follow the run again, in steps
            self.following = True
            self.view_box.disableAutoRange(axis=pg.ViewBox.XAxis)
        if self.following and len(view.x_s) and view.x_s[-1] > self._x_max:
            self._x_max = max(MIN_X_SPAN_S, float(view.x_s[-1]) * X_GROWTH)
            self.view_box.setXRange(0, self._x_max, padding=0)

    def _stop_following(self, *_args) -> None:
        self.following = False  # the user zoomed or panned; the plot's "A" button resumes following

    def _draw_in_view(self, *_args) -> None:
        """Hands each curve only what the visible range needs (a few thousand points, spikes kept)."""
        view = self._last_view
        if view is None:
            return
        x_range = None if self.following else tuple(self.view_box.viewRange()[0])
        for curve, x, y in ((self.latency_curve, view.x_s, view.latency_ms),
                            (self.p50_curve, view.rolling_x_s, view.rolling_p50_ms),
                            (self.p99_curve, view.rolling_x_s, view.rolling_p99_ms),
                            (self.throughput_curve, view.throughput_x_s, view.throughput_per_s)):
            curve.setData(*in_view(x, y, x_range), skipFiniteCheck=True)
        for panel, series in self._telemetry.items():
            for device, (x, y) in series.items():
                if self._drawn.get((panel, device)) != (len(x), x_range):  # telemetry comes at 10 Hz, not per frame
                    getattr(self, panel).curve(device).setData(*in_view(x, y, x_range), skipFiniteCheck=True)
                    self._drawn[(panel, device)] = (len(x), x_range)

    @staticmethod
    def _device_series(snapshot, names, derive_power: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        found = {}
        for key, spec in snapshot.specs.items():
            data = snapshot.series.get(key)
            if data is None or not len(data):
                continue
            if spec.name in names:
                found[spec.device] = (data.t_ns, data.values)
            elif derive_power and spec.name == metrics.ENERGY and spec.device not in found:
                found[spec.device] = power_from_energy(data.t_ns, data.values)
        return found

    def _shade_throttling(self, snapshot) -> None:
        """Checks only what arrived since the last check (plus a little overlap), never the whole run again."""
        origin = self.tracker.origin_ns
        start = origin if self._throttle_checked_ns is None else max(origin, self._throttle_checked_ns - THROTTLE_OVERLAP_NS)
        if snapshot.taken_ns <= start:
            return
        summary = detect_throttling(snapshot.specs, snapshot.series, start, snapshot.taken_ns)
        self._throttle_checked_ns = snapshot.taken_ns
        for event in summary.events:
            key = (event.device, event.start_ns)
            if key in self._shaded:
                continue
            self._shaded.add(key)
            for panel in self.panels:
                region = pg.LinearRegionItem(((event.start_ns - origin) / 1e9, (event.end_ns - origin) / 1e9),
                                             movable=False, brush=pg.mkBrush(255, 80, 80, 40))
                region.setToolTip(f"throttled on {event.device}: {', '.join(event.causes)}")
                panel.plot.addItem(region)


class _SavedTelemetry:
    """Stands in for the sampler when a saved run is shown: one fixed snapshot built from stored series."""

    def __init__(self, data):
        specs, series = {}, {}
        for stored in data.telemetry:
            spec = MetricSpec(stored.metric, "", stored.device, MetricKind.MEASURED)
            specs[spec.key] = spec
            series[spec.key] = MetricSeries(stored.timestamps_ns, stored.values)
        unavailable = [UnavailableMetric(u["name"], u["device"], u["reason"])
                       for u in (data.record.telemetry_summary or {}).get("unavailable", [])]
        end = int(data.latency.timestamps_ns[-1]) if len(data.latency) else 0
        self._snapshot = TelemetrySnapshot(specs, series, {}, unavailable, end)

    def snapshot(self) -> TelemetrySnapshot:
        return self._snapshot


def _reason(unavailable, metric: str) -> str:
    reasons = [f"{u.device}: {u.reason}" for u in unavailable if u.name in (metric, "*")]
    return "; ".join(reasons[:2])
