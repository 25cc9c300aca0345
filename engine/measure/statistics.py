"""Latency statistics that say when they are too thin to trust."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def min_samples_for(percentile: float) -> int:
    """Fewest samples for which a percentile is more than the maximum in disguise.

    Below 1 / (1 - q) samples the q-th percentile falls in the top sample:
    p90 needs 10, p95 20 and p99 100 samples.
    """
    return math.ceil(round(100.0 / (100.0 - percentile), 9))


@dataclass(frozen=True)
class LatencyStats:
    count: int
    mean_ms: float | None
    std_ms: float | None
    min_ms: float | None
    percentiles_ms: dict[str, float | None]
    max_ms: float | None
    throughput_per_s: float | None  # items (batch × iterations) per second of the timed loop's wall time
    unreliable_percentiles: tuple[str, ...]  # computed from too few samples to mean much

    def latency_dict(self) -> dict:
        return {
            "count": self.count,
            "mean": self.mean_ms,
            "std": self.std_ms,
            "min": self.min_ms,
            **self.percentiles_ms,
            "max": self.max_ms,
        }


def summarize(latencies_ns: np.ndarray, wall_ns: int, batch_size: int) -> LatencyStats:
    count = int(latencies_ns.size)
    if count == 0:
        return LatencyStats(0, None, None, None, {k: None for k in PERCENTILES}, None, None, tuple(PERCENTILES))
    ms = latencies_ns.astype(np.float64) / 1e6
    values = np.percentile(ms, list(PERCENTILES.values()))
    return LatencyStats(
        count=count,
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std(ddof=1)) if count > 1 else 0.0,
        min_ms=float(ms.min()),
        percentiles_ms={name: float(v) for name, v in zip(PERCENTILES, values)},
        max_ms=float(ms.max()),
        throughput_per_s=count * batch_size / (wall_ns / 1e9) if wall_ns > 0 else None,
        unreliable_percentiles=tuple(name for name, q in PERCENTILES.items() if count < min_samples_for(q)),
    )
