"""Incremental figures for live views: rolling latency percentiles, throughput, power, and plot decimation.

Qt-free so it is tested on its own. Each update only looks at samples that arrived since the
last one, and plots receive at most a few thousand points (a min/max envelope of what is in
view), so a refresh stays cheap with an hour of backlog (DESIGN §3: the GUI timer takes
snapshots; nothing here runs per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.growable import GrowableColumns
from engine.measure.samples import SampleBuffer

ROLLING_BLOCK = 100  # latency samples per rolling-percentile point
THROUGHPUT_BIN_S = 0.5
RECENT_SAMPLES = 1000  # the "current" p50/p99 tiles look at the last this many samples
MAX_PLOT_POINTS = 1200  # a min/max pair per two pixel columns of a wide plot: beyond this a curve shows its envelope


@dataclass
class LatencyView:
    x_s: np.ndarray  # seconds since the first timed iteration
    latency_ms: np.ndarray
    rolling_x_s: np.ndarray
    rolling_p50_ms: np.ndarray
    rolling_p99_ms: np.ndarray
    throughput_x_s: np.ndarray
    throughput_per_s: np.ndarray
    recent_p50_ms: float | None
    recent_p99_ms: float | None
    recent_throughput_per_s: float | None


class LatencyTracker:
    """Turns a growing SampleBuffer into plot-ready arrays without rescanning old samples.

    The plots draw seconds and milliseconds as floats, so those are kept here, converted once per sample; the
    views it returns are read-only and never change, whatever the tracker takes in later.
    """

    def __init__(self, batch_size: int = 1, origin_ns: int | None = None):
        self.batch_size = batch_size
        self.origin_ns = origin_ns
        self._samples = GrowableColumns((np.float64, np.float64))  # x (s), latency (ms)
        self._rolling = GrowableColumns((np.float64, np.float64, np.float64))  # x (s), p50, p99
        self._bins = np.zeros(0, dtype=np.int64)

    def update(self, buffer: SampleBuffer) -> LatencyView:
        starts_ns, latencies_ns = buffer.view(len(self._samples))
        if len(starts_ns):
            if self.origin_ns is None:
                self.origin_ns = int(starts_ns[0])
            x_new = (starts_ns - self.origin_ns) / 1e9
            self._samples.extend(x_new, latencies_ns / 1e6)
            self._add_rolling_blocks()
            self._add_to_bins(x_new)
        return self.view()

    def view(self) -> LatencyView:
        x, ms = self._samples.view()
        rolling_x, rolling_p50, rolling_p99 = self._rolling.view()
        recent = ms[-RECENT_SAMPLES:]
        complete_bins = max(len(self._bins) - 1, 0)  # the last bin is still filling
        rates = self._bins[:complete_bins] * self.batch_size / THROUGHPUT_BIN_S
        p50, p99 = (np.percentile(recent, [50, 99]) if recent.size else (None, None))
        return LatencyView(
            x, ms, rolling_x, rolling_p50, rolling_p99,
            (np.arange(complete_bins) + 1.0) * THROUGHPUT_BIN_S, rates,
            None if p50 is None else float(p50), None if p99 is None else float(p99),
            float(rates[-1]) if rates.size else None,
        )

    def _add_rolling_blocks(self) -> None:
        done = len(self._rolling) * ROLLING_BLOCK
        complete = (len(self._samples) - done) // ROLLING_BLOCK
        if complete:
            x, ms = self._samples.view(done, done + complete * ROLLING_BLOCK)
            p50, p99 = np.percentile(ms.reshape(complete, ROLLING_BLOCK), [50, 99], axis=1)
            self._rolling.extend(x[ROLLING_BLOCK - 1::ROLLING_BLOCK], p50, p99)

    def _add_to_bins(self, x_new: np.ndarray) -> None:
        counts = np.bincount((x_new / THROUGHPUT_BIN_S).astype(np.int64))
        if len(counts) > len(self._bins):
            self._bins = np.concatenate((self._bins, np.zeros(len(counts) - len(self._bins), dtype=np.int64)))
        self._bins[: len(counts)] += counts


def in_view(x: np.ndarray, y: np.ndarray, x_range: tuple[float, float] | None = None,
            max_points: int = MAX_PLOT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """What a curve should draw for `x_range` (None: everything): the raw points when few enough, else the
    min and max of each of max_points/2 consecutive blocks, so spikes stay visible (peak decimation)."""
    if x_range is not None and len(x):
        lo, hi = np.searchsorted(x, x_range[0], side="left"), np.searchsorted(x, x_range[1], side="right")
        x, y = x[max(lo - 1, 0):hi + 1], y[max(lo - 1, 0):hi + 1]
    if len(x) <= max_points:
        return x, y
    block = -(-len(x) // (max_points // 2))
    whole = len(x) // block * block
    rows_x, rows_y = x[:whole].reshape(-1, block), y[:whole].reshape(-1, block)
    envelope_x = np.repeat(rows_x[:, [0, -1]].mean(axis=1), 2)
    envelope_y = np.column_stack((rows_y.min(axis=1), rows_y.max(axis=1))).ravel()
    return np.concatenate((envelope_x, x[whole:])), np.concatenate((envelope_y, y[whole:]))


def power_from_energy(t_ns: np.ndarray, joules: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average power between consecutive readings of a cumulative energy counter (wraparound already handled)."""
    if len(t_ns) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0)
    dt = np.diff(t_ns) / 1e9
    keep = dt > 0
    watts = np.diff(joules)[keep] / dt[keep]
    return t_ns[1:][keep], watts
