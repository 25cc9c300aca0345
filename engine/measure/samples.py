"""The raw samples of a measurement: what the timed loop appends and live views read while it runs."""

from __future__ import annotations

import numpy as np

from core.growable import GrowableColumns


class SampleBuffer(GrowableColumns):
    """Start time and latency (both perf_counter_ns) of every timed iteration, in the order they ran.

    Any thread may read it while the loop appends. The run's storage writer saves from it instead of keeping a
    copy, so a run holds each sample once; live views read it as it grows.
    """

    def __init__(self, capacity: int = 1024):
        super().__init__((np.int64, np.int64), capacity)

    def snapshot(self, since: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the samples from index `since` to now: (starts_ns, latencies_ns)."""
        starts, latencies = self.rows(since)
        return starts, latencies

    @classmethod
    def from_arrays(cls, starts_ns: np.ndarray, latencies_ns: np.ndarray) -> SampleBuffer:
        """A buffer holding samples recorded earlier (a saved run shown again)."""
        buffer = cls(len(starts_ns))
        buffer.extend(starts_ns, latencies_ns)
        return buffer
