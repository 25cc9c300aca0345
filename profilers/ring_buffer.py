"""Fixed-size, preallocated storage for one metric's recent samples.

Allocated once when the sampler is prepared, so sampling at 100 Hz for hours never allocates or
grows; the oldest samples are overwritten. Everything a run needs forever goes to storage
through the sampler's subscribers; the ring serves the live plots and the run summary.
The sampler holds its lock around `append` and `series`, so this class is not thread-safe alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MetricSeries:
    """Timestamps (perf_counter_ns, ascending) and values of one metric; arrays the caller owns."""

    t_ns: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.t_ns)

    @classmethod
    def from_lists(cls, t_ns, values) -> MetricSeries:
        return cls(np.asarray(t_ns, dtype=np.int64), np.asarray(values, dtype=np.float64))

    def window(self, start_ns: int, end_ns: int) -> MetricSeries:
        """The samples with start_ns <= t <= end_ns."""
        lo = int(np.searchsorted(self.t_ns, start_ns, side="left"))
        hi = int(np.searchsorted(self.t_ns, end_ns, side="right"))
        return MetricSeries(self.t_ns[lo:hi], self.values[lo:hi])


class RingBuffer:
    def __init__(self, capacity: int):
        if capacity < 2:
            raise ValueError(f"ring buffer capacity must be at least 2, got {capacity}")
        self._t_ns = np.zeros(capacity, dtype=np.int64)
        self._values = np.zeros(capacity, dtype=np.float64)
        self._next = 0  # index the next sample goes to
        self._count = 0
        self.overwritten = 0  # samples lost to wrap-around, so a summary can say its window is incomplete

    @property
    def capacity(self) -> int:
        return len(self._t_ns)

    def __len__(self) -> int:
        return self._count

    def append(self, t_ns: int, value: float) -> None:
        index = self._next
        self._t_ns[index] = t_ns
        self._values[index] = value
        self._next = (index + 1) % len(self._t_ns)
        if self._count < len(self._t_ns):
            self._count += 1
        else:
            self.overwritten += 1

    def series(self, since_ns: int | None = None) -> MetricSeries:
        """A chronological copy of the retained samples (only those with t >= since_ns when given)."""
        if self._count < len(self._t_ns):
            t_ns, values = self._t_ns[: self._count].copy(), self._values[: self._count].copy()
        else:
            order = np.r_[self._next: len(self._t_ns), 0: self._next]
            t_ns, values = self._t_ns[order], self._values[order]
        if since_ns is not None:
            first = int(np.searchsorted(t_ns, since_ns, side="left"))
            t_ns, values = t_ns[first:], values[first:]
        return MetricSeries(t_ns, values)

    def oldest_ns(self) -> int | None:
        if self._count == 0:
            return None
        return int(self._t_ns[0] if self._count < len(self._t_ns) else self._t_ns[self._next])
