"""Summary statistics recomputed from a run's stored raw samples, so comparisons never trust stale summaries.

The percentile rule matches the engine's (storage may not import it): the q-th percentile of fewer than
1 / (1 - q) samples is the maximum in disguise, so such percentiles are flagged unreliable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from storage.records import LatencySamples

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
STATISTIC_NAMES = ("count", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
                   "throughput_per_s")


def min_samples_for(percentile: float) -> int:
    return math.ceil(round(100.0 / (100.0 - percentile), 9))


@dataclass(frozen=True)
class LatencyStatistics:
    count: int
    mean_ms: float | None
    std_ms: float | None
    min_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    throughput_per_s: float | None  # items per second from the first start to the last end
    unreliable_percentiles: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["unreliable_percentiles"] = list(self.unreliable_percentiles)
        return values


def latency_statistics(samples: LatencySamples) -> LatencyStatistics:
    count = len(samples)
    if count == 0:
        return LatencyStatistics(0, None, None, None, None, None, None, None, None, None, tuple(PERCENTILES))
    ms = samples.latencies_ns.astype(np.float64) / 1e6
    p50, p90, p95, p99 = (float(v) for v in np.percentile(ms, list(PERCENTILES.values())))
    wall_ns = int((samples.timestamps_ns + samples.latencies_ns).max() - samples.timestamps_ns.min())
    items = int(samples.batches.sum(dtype=np.int64))
    return LatencyStatistics(
        count=count,
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std(ddof=1)) if count > 1 else 0.0,
        min_ms=float(ms.min()),
        p50_ms=p50, p90_ms=p90, p95_ms=p95, p99_ms=p99,
        max_ms=float(ms.max()),
        throughput_per_s=items / (wall_ns / 1e9) if wall_ns > 0 else None,
        unreliable_percentiles=tuple(name for name, q in PERCENTILES.items() if count < min_samples_for(q)),
    )
