"""Equal-length typed columns that grow by doubling, readable while one thread appends.

One writer appends; any thread may read at any time and sees a consistent prefix: the count grows only after
the row is written, a row below the count is never written again, and a grown table holds every earlier row
before it replaces the old one. That is also why `view` can skip the copy. The columns live in one structured
array, so appending a row is a single assignment: the timed loop does one between every two iterations.
"""

from __future__ import annotations

import numpy as np

MIN_CAPACITY = 16


class GrowableColumns:
    def __init__(self, dtypes: tuple[np.dtype | type, ...], capacity: int = 1024):
        fields = [(f"column{index}", dtype) for index, dtype in enumerate(dtypes)]
        self._table = np.empty(max(int(capacity), MIN_CAPACITY), dtype=fields)
        self._names = self._table.dtype.names
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def capacity(self) -> int:
        return len(self._table)

    @property
    def dtypes(self) -> tuple[np.dtype, ...]:
        return tuple(self._table.dtype[name] for name in self._names)

    def append(self, *values) -> None:
        """One row, one value per column."""
        index = self._count
        if index == len(self._table):
            self._resize(max(index + 1, 2 * index))
        self._table[index] = values
        self._count = index + 1

    def extend(self, *arrays) -> None:
        """Many rows at once: one array per column, all the same length."""
        if len(arrays) != len(self._names) or len({len(values) for values in arrays}) != 1:
            raise ValueError(f"extend takes {len(self._names)} arrays of equal length")
        needed = self._count + len(arrays[0])
        if needed > len(self._table):
            self._resize(max(needed, 2 * len(self._table)))
        rows = self._table[self._count:needed]
        for name, values in zip(self._names, arrays, strict=True):
            rows[name] = values
        self._count = needed

    def reserve(self, capacity: int) -> None:
        """Make room for `capacity` rows now, so a timed loop never reallocates."""
        if capacity > len(self._table):
            self._resize(capacity)

    def rows(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, ...]:
        """Contiguous copies of rows [start, stop), one array per column: safe to keep or hand to anyone."""
        return tuple(column.copy() for column in self.view(start, stop))

    def view(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, ...]:
        """Read-only views of rows [start, stop), one per column, without copying: they never change later."""
        count = self._count  # read before the table: a table taken later holds at least this many rows
        stop = count if stop is None else min(stop, count)
        part = self._table[start:stop]
        columns = tuple(part[name] for name in self._names)
        for column in columns:
            column.flags.writeable = False
        return columns

    def _resize(self, capacity: int) -> None:
        grown = np.empty(capacity, dtype=self._table.dtype)
        grown[: self._count] = self._table[: self._count]
        self._table = grown
