"""What every report's template receives, whichever report it is: the statistics table, the comparison's pairs and
warnings, the bundle's manifest, and how a run is labelled in tables and plot legends."""

from __future__ import annotations

import json
from collections.abc import Sequence

from core.latency_stats import LatencyStats
from storage import Comparison, RunData
from studio.reports.template import MISSING

_STATISTIC_ROWS = (("count", "count"), ("mean", "mean_ms"), ("std", "std_ms"), ("min", "min_ms"), ("p50", "p50_ms"),
                   ("p90", "p90_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"), ("max", "max_ms"),
                   ("throughput (items/s)", "throughput_per_s"))


def run_label(run: RunData) -> str:
    model = run.record.model.path.replace("\\", "/").rsplit("/", 1)[-1] if run.record.model else "?"
    return f"#{run.record.id} {model}" + (" (optimized)" if run.record.artifact_id is not None else "")


def statistics_context(statistics: Sequence[LatencyStats]) -> dict:
    """The aligned statistics table, percentiles from too few samples marked with an asterisk."""
    return {"statistics": _statistics_rows(statistics) if statistics else [],
            "unreliable": any(stats.unreliable_percentiles and stats.count for stats in statistics)}


def comparison_context(comparison: Comparison | None) -> dict:
    if comparison is None:
        return {"pairs": [], "warnings": [], "confidence": 0.95, "resamples": 0}
    return {"pairs": comparison.pairs, "warnings": list(comparison.warnings), "confidence": comparison.confidence,
            "resamples": comparison.resamples}


def bundle_context(bundle: dict | None) -> dict:
    if bundle is None:
        return {"bundle": None, "recipe_text": None}
    settings = bundle.get("recipe", {}).get("settings")
    return {"bundle": bundle, "recipe_text": json.dumps(settings, indent=2) if settings is not None else None}


def _statistics_rows(statistics: Sequence[LatencyStats]) -> list[tuple[str, list[str]]]:
    rows = []
    for title, name in _STATISTIC_ROWS:
        values = []
        for stats in statistics:
            value = getattr(stats, name)
            unreliable = name.removesuffix("_ms") in stats.unreliable_percentiles
            text = MISSING if value is None else (f"{value:,}" if name == "count" else
                                                 f"{value:,.1f}" if name == "throughput_per_s" else f"{value:.4f} ms")
            values.append(text + (" *" if unreliable and value is not None else ""))
        rows.append((title, values))
    return rows
