"""How the CLI, the GUI and the reports write a number, and a number that is missing.

A value we could not measure is never written as 0: it reads `n/a` (or the caller's mark for tables, e.g. `-`).
"""

from __future__ import annotations

MISSING = "n/a"


def number(value: float | None, pattern: str, missing: str = MISSING) -> str:
    """`format(value, pattern)`, or `missing` when there is no value."""
    return missing if value is None else format(value, pattern)

