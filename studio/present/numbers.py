"""How the CLI, the GUI and the reports write a number, and a number that is missing.

A value we could not measure is never written as 0: it reads `n/a` (or the caller's mark for tables, e.g. `-`).
"""

from __future__ import annotations

MISSING = "n/a"


def number(value: float | None, pattern: str, missing: str = MISSING) -> str:
    """`format(value, pattern)`, or `missing` when there is no value."""
    return missing if value is None else format(value, pattern)


def milliseconds(value: float | None) -> str:
    """A latency with its unit: three decimals below 100 ms, one above, where the last digit still means something."""
    if value is None:
        return MISSING
    return f"{value:.3f} ms" if value < 100 else f"{value:.1f} ms"


def per_second(value: float | None) -> str:
    """A rate (items, tokens or queries per second) without its unit, which the sentence around it names."""
    return number(value, ",.1f")


def byte_size(size: int) -> str:
    """A size in the largest binary unit that keeps it at or above 1."""
    if size < 1024:
        return f"{size} B"
    value, unit = float(size), "B"
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.2f} {unit}"


def reading(value: float, unit: str) -> str:
    """A telemetry reading in a unit people read: bytes as KiB/MiB/GiB, percentages to one decimal, the rest with
    two; the unit goes with the number (an empty unit, e.g. a load average, adds nothing)."""
    if unit == "B":
        return byte_size(int(value))
    if unit == "%":
        return f"{value:.1f} %"
    return f"{value:,.2f} {unit}".rstrip()
