"""Incremental figures for live views: rolling latency percentiles, throughput and power, per refresh.

Qt-free so it is tested on its own. Each update only looks at samples that arrived since the
last one, so a refresh stays cheap with an hour of backlog (DESIGN §3: the GUI timer takes
snapshots; nothing here runs per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROLLING_BLOCK = 100  # latency samples per rolling-percentile point
THROUGHPUT_BIN_S = 0.5
RECENT_SAMPLES = 1000  # the "current" p50/p99 tiles look at the last this many samples


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
    """Turns growing (starts_ns, latencies_ns) snapshots into plot-ready arrays without rescanning old samples."""

    def __init__(self, batch_size: int = 1, origin_ns: int | None = None):
        self.batch_size = batch_size
        self.origin_ns = origin_ns
        self._count = 0
        self._x = np.empty(0)
        self._ms = np.empty(0)
        self._rolling: list[tuple[float, float, float]] = []
        self._bins = np.zeros(0, dtype=np.int64)

    def update(self, starts_ns: np.ndarray, latencies_ns: np.ndarray) -> LatencyView:
        """`starts_ns`/`latencies_ns` hold every sample so far (a snapshot); only the new tail is processed."""
        if self.origin_ns is None and len(starts_ns):
            self.origin_ns = int(starts_ns[0])
        new = slice(self._count, len(starts_ns))
        if new.start < new.stop:
            x_new = (starts_ns[new] - self.origin_ns) / 1e9
            self._x = np.concatenate((self._x, x_new))
            self._ms = np.concatenate((self._ms, latencies_ns[new] / 1e6))
            self._count = len(starts_ns)
            self._add_rolling_blocks()
            self._add_to_bins(x_new)
        return self.view()

    def view(self) -> LatencyView:
        rolling = np.array(self._rolling).reshape(-1, 3)
        recent = self._ms[-RECENT_SAMPLES:]
        complete_bins = max(len(self._bins) - 1, 0)  # the last bin is still filling
        rates = self._bins[:complete_bins] * self.batch_size / THROUGHPUT_BIN_S
        p50, p99 = (np.percentile(recent, [50, 99]) if recent.size else (None, None))
        return LatencyView(
            self._x, self._ms, rolling[:, 0], rolling[:, 1], rolling[:, 2],
            (np.arange(complete_bins) + 1.0) * THROUGHPUT_BIN_S, rates,
            None if p50 is None else float(p50), None if p99 is None else float(p99),
            float(rates[-1]) if rates.size else None,
        )

    def _add_rolling_blocks(self) -> None:
        done = len(self._rolling) * ROLLING_BLOCK
        while done + ROLLING_BLOCK <= self._count:
            block = self._ms[done:done + ROLLING_BLOCK]
            p50, p99 = np.percentile(block, [50, 99])
            self._rolling.append((float(self._x[done + ROLLING_BLOCK - 1]), float(p50), float(p99)))
            done += ROLLING_BLOCK

    def _add_to_bins(self, x_new: np.ndarray) -> None:
        counts = np.bincount((x_new / THROUGHPUT_BIN_S).astype(np.int64))
        if len(counts) > len(self._bins):
            self._bins = np.concatenate((self._bins, np.zeros(len(counts) - len(self._bins), dtype=np.int64)))
        self._bins[: len(counts)] += counts


def power_from_energy(t_ns: np.ndarray, joules: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average power between consecutive readings of a cumulative energy counter (wraparound already handled)."""
    if len(t_ns) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0)
    dt = np.diff(t_ns) / 1e9
    keep = dt > 0
    watts = np.diff(joules)[keep] / dt[keep]
    return t_ns[1:][keep], watts
