"""Every sample a run writer was given, kept in memory with a mark of how much is already in the database.

Keeping all of them (about 20 MB per million latency samples) rather than only the unsaved tail is what lets a
run survive a full disk or a read-only database: the caller can retry saving later or export the whole run from
memory. Appends and reads may come from different threads; the owner holds the lock.
"""

from __future__ import annotations

import numpy as np


class GrowableColumns:
    """Equal-length typed columns that double their capacity when full, so appends stay amortised O(1)."""

    def __init__(self, dtypes: tuple[np.dtype, ...], capacity: int = 4096):
        self._columns = [np.empty(capacity, dtype=dtype) for dtype in dtypes]
        self._count = 0
        self.saved = 0  # how many leading rows are already in the database

    def __len__(self) -> int:
        return self._count

    @property
    def unsaved(self) -> int:
        return self._count - self.saved

    def extend(self, *arrays: np.ndarray) -> None:
        size = len(arrays[0])
        needed = self._count + size
        if needed > len(self._columns[0]):
            capacity = max(needed, 2 * len(self._columns[0]))
            grown = [np.empty(capacity, dtype=column.dtype) for column in self._columns]
            for new, old in zip(grown, self._columns, strict=True):
                new[: self._count] = old[: self._count]
            self._columns = grown
        for column, values in zip(self._columns, arrays, strict=True):
            column[self._count: needed] = values
        self._count = needed

    def rows(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, ...]:
        """Copies of rows [start, stop), safe to hand to another thread."""
        stop = self._count if stop is None else stop
        return tuple(column[start:stop].copy() for column in self._columns)


LATENCY_DTYPES = (np.dtype(np.int64), np.dtype(np.int64), np.dtype(np.int32))
TELEMETRY_DTYPES = (np.dtype(np.int64), np.dtype(np.float64))


def as_latency_columns(timestamps_ns: object, latencies_ns: object, batches: object
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated 1-D int64/int64/int32 arrays; a scalar batch applies to every sample."""
    timestamps = np.atleast_1d(np.asarray(timestamps_ns, dtype=np.int64))
    latencies = np.atleast_1d(np.asarray(latencies_ns, dtype=np.int64))
    batch = np.asarray(batches, dtype=np.int32)
    batch = np.full(timestamps.shape, batch, dtype=np.int32) if batch.ndim == 0 else batch
    if timestamps.ndim != 1 or timestamps.shape != latencies.shape or batch.shape != timestamps.shape:
        raise ValueError(f"latency columns must be 1-D and of equal length, got {timestamps.shape}, "
                         f"{latencies.shape} and {batch.shape}")
    if latencies.size and latencies.min() < 0:
        raise ValueError("a latency cannot be negative")
    return timestamps, latencies, batch


def as_telemetry_columns(timestamps_ns: object, values: object) -> tuple[np.ndarray, np.ndarray]:
    timestamps = np.atleast_1d(np.asarray(timestamps_ns, dtype=np.int64))
    readings = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if timestamps.ndim != 1 or timestamps.shape != readings.shape:
        raise ValueError(f"telemetry columns must be 1-D and of equal length, got {timestamps.shape} "
                         f"and {readings.shape}")
    return timestamps, readings
