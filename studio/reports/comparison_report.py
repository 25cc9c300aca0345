"""The GUI's "export comparison": what its compare page holds (usecases.ComparisonView) as an HTML report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from storage import Comparison, RunData
from studio.reports.context import (
    bundle_context,
    comparison_context,
    statistics_context,
)
from studio.reports.plots import latency_plots
from studio.reports.run_report import run_report_html
from studio.reports.template import render


def comparison_html(comparison: Comparison, latencies_ms: Mapping[int, np.ndarray], *,
                    runs: Sequence[RunData] = ()) -> str:
    """The comparison and every run's latencies; given the runs themselves as well, the report adds telemetry,
    cold start and the environment differences."""
    if runs:
        return run_report_html(runs, comparison=comparison)
    labels = {run.run_id: run.label for run in comparison.runs}
    context = {
        "title": "Runs " + ", ".join(f"#{run.run_id}" for run in comparison.runs),
        "runs": [{"label": run.label, "status": run.status, "host": run.host, "error": None}
                 for run in comparison.runs],
        "detailed": False,
        **statistics_context([run.statistics for run in comparison.runs]),
        "energy": [{"device": row.device, "source": row.source,
                    "cells": [{"value": v, "reason": r} for v, r in zip(row.joules_per_inference,
                                                                         row.unavailable_reasons)]}
                   for row in comparison.energy],
        "environment_differences": [],
        "environment": None,
        "plots": {"latency": latency_plots({labels[run_id]: np.asarray(values) for run_id, values in
                                            latencies_ms.items()}), "energy": None, "telemetry": None},
        **comparison_context(comparison),
        **bundle_context(None),
    }
    return render(context)
