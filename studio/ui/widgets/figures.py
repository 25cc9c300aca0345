"""How the GUI writes one figure with its unit: through present.numbers, so a missing value is never a 0.

While a run has produced nothing yet, and in table cells, a missing figure is a dash; finished results say "n/a"
or "unavailable" where the console does.
"""

from __future__ import annotations

from studio.present.numbers import number

NOT_YET = "–"


def figure(value: float | None, pattern: str, unit: str = "", missing: str = NOT_YET) -> str:
    """`format(value, pattern)` and its unit, e.g. "1.234 ms"; `missing` alone when there is no value."""
    return missing if value is None else number(value, pattern) + unit
