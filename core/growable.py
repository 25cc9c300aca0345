"""Equal-length typed columns that grow by doubling, readable while one thread appends.

One writer appends; any thread may read `rows` at any time and sees a consistent prefix: the count grows only
after the row is written, and a grown array holds every earlier row before it replaces the old one.
"""

from __future__ import annotations

import numpy as np


class GrowableColumns:
    def __init__(self, dtypes: tuple[np.dtype | type, ...], capacity: int = 1024):
        capacity = max(int(capacity), 16)
        self._columns = [np.empty(capacity, dtype=dtype) for dtype in dtypes]
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        return len(self._columns[0])

    def append(self, *values) -> None:
        """One row; the cheap path for a timed loop (no array allocation)."""
        index = self._count
        if index == self.capacity:
            self._grow(index + 1)
        for column, value in zip(self._columns, values, strict=True):
            column[index] = value
        self._count = index + 1

    def extend(self, *arrays) -> None:
        """Many rows at once: one array per column, all the same length."""
        size = len(arrays[0])
        needed = self._count + size
        if needed > self.capacity:
            self._grow(needed)
        for column, values in zip(self._columns, arrays, strict=True):
            column[self._count: needed] = values
        self._count = needed

    def reserve(self, capacity: int) -> None:
        """Make room for `capacity` rows now, so a timed loop never reallocates."""
        if capacity > self.capacity:
            self._grow(capacity)

    def rows(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, ...]:
        """Copies of rows [start, stop), safe to hand to another thread."""
        count = self._count
        stop = count if stop is None else min(stop, count)
        columns = self._columns
        return tuple(column[start:stop].copy() for column in columns)

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * self.capacity)
        grown = [np.empty(capacity, dtype=column.dtype) for column in self._columns]
        for new, old in zip(grown, self._columns, strict=True):
            new[: self._count] = old[: self._count]
        self._columns = grown
