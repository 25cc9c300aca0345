"""Self-contained HTML reports of saved runs, comparisons and deployment bundles, with static plots.

One template (resources/templates/report.html.j2, Jinja2) serves every report, so a run's report, a comparison
and a bundle's report.html read alike. Plots are drawn with matplotlib on a `Figure` of its own (no pyplot, so
no global state and no GUI backend: safe on a worker thread beside Qt) and inlined as SVG data URIs, so the
file opens anywhere with nothing beside it. Statistics are recomputed from the stored raw samples, never taken
from a summary. The GUI's "export comparison" calls `comparison_html` with what its compare page holds.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np

import storage
from core.atomic_files import write_text_atomically
from engine.errors import InputError
from storage import Comparison, RunData, RunFilter
from studio import __version__

TOOL_NAME = "Open-AutoGLM Studio"
TEMPLATE = "report.html.j2"
HISTOGRAM_BINS = 60
VIEW_PERCENTILE = 99.5  # plots stop here so one stall does not squash the distribution; the tables keep it all
MAX_PLOT_POINTS = 2000
MAX_TELEMETRY_PANELS = 12
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_STATISTIC_ROWS = (("count", "count"), ("mean", "mean_ms"), ("std", "std_ms"), ("min", "min_ms"), ("p50", "p50_ms"),
                   ("p90", "p90_ms"), ("p95", "p95_ms"), ("p99", "p99_ms"), ("max", "max_ms"),
                   ("throughput (items/s)", "throughput_per_s"))


# --- the reports ------------------------------------------------------------------------------------------------

def run_report_html(runs: Sequence[RunData], *, comparison: Comparison | None = None, bundle: dict | None = None,
                    title: str | None = None) -> str:
    """One run, or several compared with the first as the baseline (its comparison is computed when not given)."""
    if len(runs) > 1 and comparison is None:
        comparison = storage.compare_runs(list(runs))
    latencies = {_label(run): run.latency.latencies_ns / 1e6 for run in runs}
    context = {
        "title": title or _title(runs),
        "runs": [_run_view(run) for run in runs],
        "detailed": True,
        **_statistics_context([run.latency.statistics() for run in runs]),
        "energy": _energy_rows(runs),
        "environment_differences": environment_differences([run.record.environment for run in runs]),
        "environment": json.dumps(runs[0].record.environment, indent=2, sort_keys=True) if len(runs) == 1 else None,
        "plots": {"latency": latency_plots(latencies), "energy": _energy_plot(runs),
                  "telemetry": telemetry_plot(runs)},
        "telemetry_caption": "Each panel is one metric on one device, over seconds since the run started.",
        **_comparison_context(comparison),
        **_bundle_context(bundle),
    }
    return render(context)


def comparison_html(comparison: Comparison, latencies_ms: Mapping[int, np.ndarray], *,
                    runs: Sequence[RunData] = ()) -> str:
    """The GUI's "export comparison": what its compare page holds (session.ComparisonView), as a report.

    Given the runs themselves as well, the report adds telemetry, cold start and the environment differences.
    """
    if runs:
        return run_report_html(runs, comparison=comparison)
    labels = {run.run_id: run.label for run in comparison.runs}
    context = {
        "title": "Runs " + ", ".join(f"#{run.run_id}" for run in comparison.runs),
        "runs": [{"label": run.label, "status": run.status, "host": run.host, "error": None}
                 for run in comparison.runs],
        "detailed": False,
        **_statistics_context([run.statistics for run in comparison.runs]),
        "energy": [{"device": row.device, "source": row.source,
                    "cells": [{"value": v, "reason": r} for v, r in zip(row.joules_per_inference,
                                                                         row.unavailable_reasons)]}
                   for row in comparison.energy],
        "environment_differences": [],
        "environment": None,
        "plots": {"latency": latency_plots({labels[run_id]: np.asarray(values) for run_id, values in
                                            latencies_ms.items()}), "energy": None, "telemetry": None},
        **_comparison_context(comparison),
        **_bundle_context(None),
    }
    return render(context)


def bundle_report_renderer(run: RunData | None = None, *, original: RunData | None = None
                           ) -> Callable[[dict], str]:
    """The `render_report` for engine.bundle.export.export_bundle: the bundle's model card, recipe and fidelity, with the
    run it came from and, when one exists, that run compared with the original model's run."""
    def render_bundle(manifest: dict) -> str:
        runs = [run for run in (original, run) if run is not None]
        title = f"Deployment bundle: {manifest['model']['name']} ({manifest['model']['format']})"
        if runs:
            return run_report_html(runs, bundle=manifest, title=title)
        context = {"title": title, "runs": [], "detailed": False, **_statistics_context([]), "energy": [],
                   "environment_differences": [],
                   "environment": None, "plots": {"latency": [], "energy": None, "telemetry": None},
                   **_comparison_context(None), **_bundle_context(manifest)}
        return render(context)

    return render_bundle


def write_run_report(db_url: str | None, run_id: int, compare_ids: Sequence[int], output: str | os.PathLike) -> Path:
    """`report --run ID [--compare ID ...] -o report.html`: read the runs, render, write atomically."""
    ids = [run_id, *compare_ids]
    if len(set(ids)) != len(ids):
        raise InputError(f"each run can appear only once in a report, got runs {ids}")
    with storage.open_database(db_url) as db:
        runs = [db.runs.load_run(identifier, telemetry=True) for identifier in ids]
    return write_text_atomically(output, run_report_html(runs))


def run_summary(run: RunData) -> dict:
    """A stored run as the benchmark summary a bundle's manifest keeps (engine.bundle.manifest.BENCHMARK_FIELDS)."""
    record, statistics = run.record, run.latency.statistics()
    summary = record.summary or {}
    energy = [{"device": f.device, "source": f.source, "joules_per_inference": f.joules_per_inference,
               "total_joules": f.total_joules, "unavailable_reason": f.unavailable_reason} for f in record.energy]
    measured = {f.device: f.joules_per_inference for f in record.energy if f.joules_per_inference is not None}
    return {
        "run_id": record.id, "status": record.status, "started_at": record.started_at.isoformat(),
        "device": record.device, "backend": record.backend, "provider": record.provider,
        "provider_options": record.provider_options, "samples": statistics.count,
        "batch_size": (summary.get("inputs") or {}).get("batch_size"),
        "latency_ms": {name: getattr(statistics, name) for name in
                       ("count", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")},
        "unreliable_percentiles": list(statistics.unreliable_percentiles),
        "throughput_per_s": statistics.throughput_per_s, "cold_start_ms": summary.get("cold_start_ms"),
        "energy": energy, "energy_per_inference_j": measured or None,  # per device: never summed across meters
        "environment": record.environment, "host": record.host,
        "model_sha256": record.model.sha256 if record.model else None,
    }


def find_original_run(db, run: RunData) -> RunData | None:
    """For a run of an optimized artifact: the newest completed run of its original model on the same device."""
    record = run.record
    if record.artifact_id is None or record.model is None:
        return None
    page = db.runs.list_runs(RunFilter(model=record.model.sha256, device=record.device, status="completed"), limit=100)
    original = next((r for r in page.runs if r.artifact_id is None and r.id != record.id), None)
    return db.runs.load_run(original.id, telemetry=True) if original else None


def render(context: dict) -> str:
    return _environment().get_template(TEMPLATE).render(
        tool_name=TOOL_NAME, tool_version=__version__,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **context)


# --- plots (shared with the GUI) --------------------------------------------------------------------------------

def latency_plots(latencies_ms: Mapping[str, np.ndarray]) -> list[dict]:
    """Overlaid latency histogram and CDF of each labelled run, as SVG data URIs with captions."""
    series = {label: np.sort(np.asarray(values, dtype=np.float64)) for label, values in latencies_ms.items()
              if np.asarray(values).size}
    if not series:
        return []
    upper = max(float(np.percentile(values, VIEW_PERCENTILE)) for values in series.values())
    lower = min(float(values[0]) for values in series.values())
    edges = np.linspace(lower, upper if upper > lower else lower + 1e-3, HISTOGRAM_BINS + 1)
    histogram, cdf = _figure(), _figure()
    hist_axes, cdf_axes = histogram.add_subplot(), cdf.add_subplot()
    for index, (label, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        hist_axes.hist(values[values <= edges[-1]], bins=edges, histtype="step", linewidth=1.6, color=colour,
                       label=label)
        picks = np.unique(np.linspace(0, values.size - 1, min(values.size, MAX_PLOT_POINTS)).astype(np.int64))
        cdf_axes.step(values[picks], (picks + 1) / values.size, where="post", color=colour, linewidth=1.6, label=label)
    hist_axes.set(xlabel="latency (ms)", ylabel="iterations", title="Latency histogram")
    cdf_axes.set(xlabel="latency (ms)", ylabel="share of iterations", title="Latency CDF", xlim=(lower, edges[-1]),
                 ylim=(0, 1.01))
    for axes in (hist_axes, cdf_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    caption = f"Up to the {VIEW_PERCENTILE:g}th percentile of the slowest run; the tables include every sample."
    return [{"title": "Latency histogram", "uri": svg_uri(histogram), "caption": caption},
            {"title": "Latency CDF", "uri": svg_uri(cdf), "caption": caption}]


def telemetry_plot(runs: Sequence[RunData]) -> str | None:
    """One panel per metric and device, each run overlaid over seconds since its first sample."""
    panels: dict[tuple[str, str], list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for index, run in enumerate(runs):
        starts = [s.timestamps_ns.min() for s in run.telemetry if s.timestamps_ns.size]
        if run.latency.timestamps_ns.size:
            starts.append(run.latency.timestamps_ns.min())
        for series in run.telemetry:
            if series.values.size:
                seconds = (series.timestamps_ns - min(starts)) / 1e9
                panels.setdefault((series.device, series.metric), []).append((index, seconds, series.values))
    if not panels:
        return None
    from matplotlib.ticker import EngFormatter

    keys = sorted(panels)[:MAX_TELEMETRY_PANELS]
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    figure = _figure(3.6 * columns, 2.4 * rows)
    for position, key in enumerate(keys, start=1):
        axes = figure.add_subplot(rows, columns, position)
        for index, seconds, values in panels[key]:
            stride = max(1, values.size // MAX_PLOT_POINTS)
            axes.plot(seconds[::stride], values[::stride], color=COLOURS[index % len(COLOURS)], linewidth=1.2,
                      label=_label(runs[index]))
        axes.yaxis.set_major_formatter(EngFormatter(sep=" "))  # 1.2 G, 2.6 k: short labels, no offset text
        low, high = (min(float(v.min()) for _, _, v in panels[key]), max(float(v.max()) for _, _, v in panels[key]))
        if high - low < 1e-6 * max(1.0, abs(high)):  # a flat line, not float noise blown up to fill the panel
            axes.set_ylim(low - max(1.0, abs(low) * 0.05), high + max(1.0, abs(high) * 0.05))
        axes.set_title(f"{key[0]} · {key[1]}", fontsize="medium")
        axes.set_xlabel("s", fontsize="small")
        axes.grid(alpha=0.3)
    if len(runs) > 1:
        figure.axes[0].legend(fontsize="x-small")
    return svg_uri(figure)


def svg_uri(figure) -> str:
    """The figure as an SVG data URI: text stays text, and the same figure always gives the same bytes."""
    import matplotlib

    stream = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "open-autoglm-studio"}):
        figure.savefig(stream, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(stream.getvalue()).decode("ascii")


def _figure(width: float = 5.6, height: float = 3.4, *, left: float = 0.75, right: float = 0.2, bottom: float = 0.55,
            top: float = 0.4, wspace: float = 0.35, hspace: float = 0.8):
    """A figure with fixed margins in inches: a layout engine would cost more than drawing the plots."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    figure.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                           wspace=wspace, hspace=hspace)
    return figure


def _energy_plot(runs: Sequence[RunData]) -> str | None:
    bars = [(f"#{run.record.id} {f.device}", f.joules_per_inference * 1e3, index)
            for index, run in enumerate(runs) for f in run.record.energy if f.joules_per_inference is not None]
    if not bars:
        return None
    figure = _figure(5.6, 1.3 + 0.35 * len(bars), left=1.6)
    axes = figure.add_subplot()
    axes.barh([b[0] for b in bars], [b[1] for b in bars], color=[COLOURS[b[2] % len(COLOURS)] for b in bars])
    axes.invert_yaxis()
    axes.set(xlabel="mJ per inference", title="Energy per inference")
    axes.grid(axis="x", alpha=0.3)
    return svg_uri(figure)


# --- context ----------------------------------------------------------------------------------------------------

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
        "label": _label(run), "model": record.model.path.replace("\\", "/").rsplit("/", 1)[-1] if record.model else "?",
        "artifact": record.artifact_id is not None, "status": record.status, "error": record.error,
        "device": record.device, "backend": record.backend, "provider": record.provider,
        "started_at": record.started_at.strftime("%Y-%m-%d %H:%M:%S"), "host": record.host, "tags": record.tags,
        "inputs": f"{inputs.get('source', '?')}: {shapes}" if shapes else inputs.get("source", "not recorded"),
        "settings": {key: value for key, value in record.settings.items() if key != "inputs"},
        "cold_start": (f"{cold['total']:.2f} ms (load {cold.get('load', 0):.2f}, session {cold.get('session', 0):.2f}, "
                       f"first inference {cold.get('first_inference', 0):.2f})") if "total" in cold else "not recorded",
    }


def _statistics_context(statistics: Sequence) -> dict:
    """The aligned statistics table, percentiles from too few samples marked with an asterisk."""
    return {"statistics": _statistics_rows(statistics) if statistics else [],
            "unreliable": any(stats.unreliable_percentiles and stats.count for stats in statistics)}


def _statistics_rows(statistics: Sequence) -> list[tuple[str, list[str]]]:
    rows = []
    for title, name in _STATISTIC_ROWS:
        values = []
        for stats in statistics:
            value = getattr(stats, name)
            unreliable = name.removesuffix("_ms") in stats.unreliable_percentiles
            text = "n/a" if value is None else (f"{value:,}" if name == "count" else
                                               f"{value:,.1f}" if name == "throughput_per_s" else f"{value:.4f} ms")
            values.append(text + (" *" if unreliable and value is not None else ""))
        rows.append((title, values))
    return rows


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


def _comparison_context(comparison: Comparison | None) -> dict:
    if comparison is None:
        return {"pairs": [], "warnings": [], "confidence": 0.95, "resamples": 0}
    return {"pairs": comparison.pairs, "warnings": list(comparison.warnings), "confidence": comparison.confidence,
            "resamples": comparison.resamples}


def _bundle_context(bundle: dict | None) -> dict:
    if bundle is None:
        return {"bundle": None, "recipe_text": None}
    settings = bundle.get("recipe", {}).get("settings")
    return {"bundle": bundle, "recipe_text": json.dumps(settings, indent=2) if settings is not None else None}


def _label(run: RunData) -> str:
    model = run.record.model.path.replace("\\", "/").rsplit("/", 1)[-1] if run.record.model else "?"
    return f"#{run.record.id} {model}" + (" (optimized)" if run.record.artifact_id is not None else "")


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


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FunctionLoader, StrictUndefined, select_autoescape

    folder = files("studio.resources") / "templates"
    environment = Environment(loader=FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
                              autoescape=select_autoescape(default=True, default_for_string=True),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(num=_number, size=_size, dims=_dims, energy=_energy)
    return environment


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.{digits}g}"


def _size(value) -> str:
    if value is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(value)


def _dims(shape) -> str:
    return "unknown rank" if shape is None else ("scalar" if not shape else " × ".join("?" if d is None else str(d)
                                                                                    for d in shape))


def _energy(joules: float) -> str:
    return f"{joules * 1e3:.4g} mJ"
