"""Growable preallocated storage for raw latency samples, readable while a run writes it."""

from __future__ import annotations

import numpy as np


class SampleBuffer:
    """Start time and latency (both perf_counter_ns) of every timed iteration.

    One thread appends; any thread may call `snapshot` at any time. A reader sees
    a consistent prefix: the count grows only after the sample is written, and a
    grown array holds every earlier sample before it replaces the old one.
    """

    def __init__(self, capacity: int = 1024):
        capacity = max(int(capacity), 16)
        self._starts = np.empty(capacity, dtype=np.int64)
        self._latencies = np.empty(capacity, dtype=np.int64)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, start_ns: int, latency_ns: int) -> None:
        index = self._count
        if index == len(self._starts):
            self._grow()
        self._starts[index] = start_ns
        self._latencies[index] = latency_ns
        self._count = index + 1

    def snapshot(self, since: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the samples from index `since` to now: (starts_ns, latencies_ns)."""
        count = self._count
        starts, latencies = self._starts, self._latencies
        return starts[since:count].copy(), latencies[since:count].copy()

    def _grow(self) -> None:
        size = len(self._starts) * 2
        starts = np.empty(size, dtype=np.int64)
        latencies = np.empty(size, dtype=np.int64)
        starts[: self._count] = self._starts[: self._count]
        latencies[: self._count] = self._latencies[: self._count]
        self._starts, self._latencies = starts, latencies

    def reserve(self, capacity: int) -> None:
        """Make room for `capacity` samples now, so the timed loop never reallocates."""
        while len(self._starts) < capacity:
            self._grow()

    @classmethod
    def from_arrays(cls, starts_ns: np.ndarray, latencies_ns: np.ndarray) -> SampleBuffer:
        """A buffer holding samples recorded earlier (a saved run shown again)."""
        buffer = cls(len(starts_ns))
        buffer._starts[: len(starts_ns)] = starts_ns
        buffer._latencies[: len(latencies_ns)] = latencies_ns
        buffer._count = len(starts_ns)
        return buffer
