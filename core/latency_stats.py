"""Latency statistics that say when they are too thin to trust: one type for the engine, storage and views.

Throughput has one definition: items per second of the timed loop's wall time, from the first timed iteration's
start to the last one's end.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def min_samples_for(percentile: float) -> int:
    """Fewest samples for which a percentile is more than the maximum in disguise.

    Below 1 / (1 - q) samples the q-th percentile falls in the top sample: p90 needs 10, p95 20 and p99 100.
    """
    return math.ceil(round(100.0 / (100.0 - percentile), 9))


def loop_wall_ns(starts_ns: np.ndarray, latencies_ns: np.ndarray) -> int:
    """Wall time of a timed loop: first start to last end (0 without samples)."""
    if len(starts_ns) == 0:
        return 0
    return int((np.asarray(starts_ns) + np.asarray(latencies_ns)).max() - np.asarray(starts_ns).min())


@dataclass(frozen=True)
class LatencyStats:
    count: int
    mean_ms: float | None
    std_ms: float | None
    min_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    throughput_per_s: float | None  # items per second of the timed loop's wall time; None without a loop
    unreliable_percentiles: tuple[str, ...]  # computed from too few samples to mean much

    @classmethod
    def of(cls, latencies_ns: np.ndarray, *, wall_ns: int, items: int | None = None) -> LatencyStats:
        """Statistics of raw latencies (ns); `items` defaults to one per sample (batch 1)."""
        latencies = np.asarray(latencies_ns)
        count = int(latencies.size)
        if count == 0:
            return cls(0, None, None, None, None, None, None, None, None, None, tuple(PERCENTILES))
        items = count if items is None else items
        ms = latencies.astype(np.float64) / 1e6
        p50, p90, p95, p99 = (float(v) for v in np.percentile(ms, list(PERCENTILES.values())))
        return cls(
            count=count,
            mean_ms=float(ms.mean()),
            std_ms=float(ms.std(ddof=1)) if count > 1 else 0.0,
            min_ms=float(ms.min()),
            p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99,
            max_ms=float(ms.max()),
            throughput_per_s=items / (wall_ns / 1e9) if wall_ns > 0 else None,
            unreliable_percentiles=tuple(name for name, q in PERCENTILES.items() if count < min_samples_for(q)),
        )

    @classmethod
    def of_loop(cls, starts_ns: np.ndarray, latencies_ns: np.ndarray, items: int | None = None) -> LatencyStats:
        """Statistics of a timed loop's samples, its wall time taken from the samples themselves."""
        return cls.of(latencies_ns, wall_ns=loop_wall_ns(starts_ns, latencies_ns), items=items)

    def percentile(self, name: str) -> float | None:
        """`p50`, `p90`, `p95` or `p99` in ms."""
        if name not in PERCENTILES:
            raise KeyError(f"unknown percentile {name!r}; choose one of {', '.join(PERCENTILES)}")
        return getattr(self, f"{name}_ms")

    @property
    def percentiles_ms(self) -> dict[str, float | None]:
        return {name: self.percentile(name) for name in PERCENTILES}

    def latency_dict(self) -> dict[str, Any]:
        """The `latency_ms` block of a result document: count, mean, std, min, p50…p99, max (ms)."""
        return {"count": self.count, "mean": self.mean_ms, "std": self.std_ms, "min": self.min_ms,
                **self.percentiles_ms, "max": self.max_ms}

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["unreliable_percentiles"] = list(self.unreliable_percentiles)
        return values


STATISTIC_NAMES = tuple(name for name in LatencyStats.__dataclass_fields__ if name != "unreliable_percentiles")
