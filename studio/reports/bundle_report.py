"""A deployment bundle's report.html: its model card, recipe and fidelity, with the run it came from and, when one
exists, that run compared with the original model's run."""

from __future__ import annotations

from collections.abc import Callable

from storage import RunData
from studio.reports.context import (
    bundle_context,
    comparison_context,
    statistics_context,
)
from studio.reports.run_report import run_report_html
from studio.reports.template import render


def bundle_report_renderer(run: RunData | None = None, *, original: RunData | None = None
                           ) -> Callable[[dict], str]:
    """The `render_report` for engine.bundle.export.export_bundle, which hands it the bundle's manifest."""
    def render_bundle(manifest: dict) -> str:
        runs = [run for run in (original, run) if run is not None]
        title = f"Deployment bundle: {manifest['model']['name']} ({manifest['model']['format']})"
        if runs:
            return run_report_html(runs, bundle=manifest, title=title)
        context = {"title": title, "runs": [], "detailed": False, **statistics_context([]), "energy": [],
                   "environment_differences": [],
                   "environment": None, "plots": {"latency": [], "energy": None, "telemetry": None},
                   **comparison_context(None), **bundle_context(manifest)}
        return render(context)

    return render_bundle
