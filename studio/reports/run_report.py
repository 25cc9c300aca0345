"""The HTML report of one saved run, or of several compared with the first as the baseline (`report --run ID
[--compare ID ...]`). Statistics are recomputed from the stored raw samples, never taken from a summary."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import storage
from core.atomic_files import write_text_atomically
from engine.errors import InputError
from storage import Comparison, RunData
from studio.reports.context import (
    bundle_context,
    comparison_context,
    run_label,
    statistics_context,
)
from studio.reports.plots import energy_plot, latency_plots, telemetry_plot
from studio.reports.template import render


def run_report_html(runs: Sequence[RunData], *, comparison: Comparison | None = None, bundle: dict | None = None,
                    title: str | None = None) -> str:
    """One run, or several compared with the first as the baseline (its comparison is computed when not given)."""
    if len(runs) > 1 and comparison is None:
        comparison = storage.compare_runs(list(runs))
    latencies = {run_label(run): run.latency.latencies_ns / 1e6 for run in runs}
    context = {
        "title": title or _title(runs),
        "runs": [_run_view(run) for run in runs],
        "detailed": True,
        **statistics_context([run.latency.statistics() for run in runs]),
        "energy": _energy_rows(runs),
        "environment_differences": environment_differences([run.record.environment for run in runs]),
        "environment": json.dumps(runs[0].record.environment, indent=2, sort_keys=True) if len(runs) == 1 else None,
        "plots": {"latency": latency_plots(latencies), "energy": energy_plot(runs),
                  "telemetry": telemetry_plot(runs)},
        "telemetry_caption": "Each panel is one metric on one device, over seconds since the run started.",
        **comparison_context(comparison),
        **bundle_context(bundle),
    }
    return render(context)


def write_run_report(db_url: str | None, run_id: int, compare_ids: Sequence[int], output: str | os.PathLike) -> Path:
    """`report --run ID [--compare ID ...] -o report.html`: read the runs, render, write atomically."""
    ids = [run_id, *compare_ids]
    if len(set(ids)) != len(ids):
        raise InputError(f"each run can appear only once in a report, got runs {ids}")
    with storage.open_database(db_url) as db:
        runs = [db.runs.load_run(identifier, telemetry=True) for identifier in ids]
    return write_text_atomically(output, run_report_html(runs))


def environment_differences(environments: Sequence[Mapping]) -> list[tuple[str, list[str]]]:
    """Each flattened environment setting whose value is not the same in every run, with each run's value."""
    if len(environments) < 2:
        return []
    flat = [_flatten(environment) for environment in environments]
    keys = sorted(set().union(*flat))
    return [(key, [_text(env.get(key, "—")) for env in flat]) for key in keys
            if len({json.dumps(env.get(key), sort_keys=True, default=str) for env in flat}) > 1]


def _title(runs: Sequence[RunData]) -> str:
    if len(runs) == 1:
        return f"Run {runs[0].record.id}"
    return "Runs " + ", ".join(f"#{run.record.id}" for run in runs[1:]) + f" compared with #{runs[0].record.id}"


def _run_view(run: RunData) -> dict:
    record = run.record
    summary = record.summary or {}
    inputs = summary.get("inputs") or record.settings.get("inputs") or {}
    shapes = ", ".join(f"{name} {'×'.join(map(str, shape))}" for name, shape in (inputs.get("shapes") or {}).items())
    cold = summary.get("cold_start_ms") or {}
    return {
        "label": run_label(run), "model": record.model.path.replace("\\", "/").rsplit("/", 1)[-1] if record.model else "?",
        "artifact": record.artifact_id is not None, "status": record.status, "error": record.error,
        "device": record.device, "backend": record.backend, "provider": record.provider,
        "started_at": record.started_at.strftime("%Y-%m-%d %H:%M:%S"), "host": record.host, "tags": record.tags,
        "inputs": f"{inputs.get('source', '?')}: {shapes}" if shapes else inputs.get("source", "not recorded"),
        "settings": {key: value for key, value in record.settings.items() if key != "inputs"},
        "cold_start": (f"{cold['total']:.2f} ms (load {cold.get('load', 0):.2f}, session {cold.get('session', 0):.2f}, "
                       f"first inference {cold.get('first_inference', 0):.2f})") if "total" in cold else "not recorded",
    }


def _energy_rows(runs: Sequence[RunData]) -> list[dict]:
    keys = list(dict.fromkeys((f.device, f.source) for run in runs for f in run.record.energy))
    rows = []
    for device, source in keys:
        cells = []
        for run in runs:
            figure = next((f for f in run.record.energy if (f.device, f.source) == (device, source)), None)
            if figure is None and not source:
                figure = next((f for f in run.record.energy
                               if f.device == device and f.joules_per_inference is None), None)
            cells.append({"value": figure.joules_per_inference if figure else None,
                          "reason": (figure.unavailable_reason if figure else None) or "not measured in this run"})
        rows.append({"device": device, "source": source, "cells": cells})
    return rows


def _flatten(values: Mapping, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
