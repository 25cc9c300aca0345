"""Every sample a run writer was given, kept in memory with a mark of how much is already in the database.

Keeping all of them (about 20 MB per million latency samples) rather than only the unsaved tail is what lets a
run survive a full disk or a read-only database: the caller can retry saving later or export the whole run from
memory. A benchmark's latency samples are not copied for this: the benchmark's own buffer keeps every sample
already, so the writer reads the rows there and a run holds each sample once. Appends and reads may come from
different threads; the owner holds the lock.
"""

from __future__ import annotations

import numpy as np

from core.growable import GrowableColumns

LATENCY_DTYPES = (np.dtype(np.int64), np.dtype(np.int64), np.dtype(np.int32))
TELEMETRY_DTYPES = (np.dtype(np.int64), np.dtype(np.float64))


class KeptRows:
    """Rows held in memory until the run is saved, and `saved`: how many leading rows are in the database.

    `columns` are the writer's own, or with `batch_size` a benchmark's (start, latency) buffer read where the
    benchmark writes it (every row `batch_size` items); the benchmark thread then stays its only writer.
    """

    def __init__(self, columns: GrowableColumns, *, batch_size: int | None = None):
        if batch_size is not None and columns.dtypes != LATENCY_DTYPES[:2]:
            raise ValueError(f"a latency buffer holds int64 starts and latencies, not {columns.dtypes}")
        self._columns = columns
        self._batch_size = batch_size
        self._end: int | None = None  # the row count once the run is finished
        self.saved = 0

    def __len__(self) -> int:
        return len(self._columns) if self._end is None else self._end

    @property
    def unsaved(self) -> int:
        return len(self) - self.saved

    @property
    def shared(self) -> bool:
        """True when the rows are a benchmark's buffer, which only the benchmark appends to."""
        return self._batch_size is not None

    def extend(self, *arrays: np.ndarray) -> None:
        self._columns.extend(*arrays)

    def close(self) -> None:
        """No rows after the current ones belong to the run, even if the buffer read here keeps growing."""
        self._end = len(self)

    def rows(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, ...]:
        """Copies of rows [start, stop), safe to hand to another thread."""
        stop = len(self) if stop is None else min(stop, len(self))
        rows = self._columns.rows(start, stop)
        if self._batch_size is None:
            return rows
        return (*rows, np.full(rows[0].size, self._batch_size, dtype=LATENCY_DTYPES[2]))


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
