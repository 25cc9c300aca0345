"""Saved runs for people: the `runs list` page, one run's record, and a comparison with the first run as baseline."""

from __future__ import annotations

from storage import Comparison, RunData, RunPage
from studio.present.benchmarks import LATENCY_COLUMNS
from studio.present.numbers import MISSING, milliseconds, per_second
from studio.present.tables import table


def runs_text(page: RunPage, offset: int) -> str:
    if not page.runs:
        return "no saved runs match" if page.total == 0 else f"no runs on this page ({page.total} match; lower --offset)"
    rows = []
    for run in page.runs:
        latency = (run.summary or {}).get("latency_ms", {})
        model = run.model.path.rsplit("/", 1)[-1] if run.model else "?"
        status = f"{run.status} (damaged)" if run.damaged else run.status
        rows.append((run.id, run.started_at.strftime("%Y-%m-%d %H:%M"), status, model, run.device,
                     f"{run.backend}:{run.provider or '-'}", milliseconds(latency.get("p50")),
                     milliseconds(latency.get("p99")), ",".join(run.tags)))
    shown = f"runs {offset + 1}-{offset + len(page.runs)} of {page.total}"
    damaged = [f"run {run.id} is damaged: {run.damaged} (shown as missing)" for run in page.runs if run.damaged]
    shown = "\n".join([shown, *damaged])
    return table(("id", "started (UTC)", "status", "model", "device", "runs with", "p50", "p99", "tags"), rows) + f"\n{shown}"


def run_text(data: RunData) -> str:
    run = data.record
    summary = run.summary or {}
    lines = [
        f"run         {run.id} ({run.status}{': ' + run.error if run.error else ''})",
        f"model       {run.model.path if run.model else '?'} ({run.model.sha256[:12] if run.model else ''})",
        f"device      {run.device} via {run.backend}:{run.provider or '-'} {run.provider_options or ''}".rstrip(),
        f"host        {run.host}",
        f"started     {run.started_at.isoformat(timespec='seconds')}"
        + (f", ended {run.ended_at.isoformat(timespec='seconds')}" if run.ended_at else ""),
        f"samples     {data.latency.latencies_ns.size:,} latency samples stored",
    ]
    if run.damaged:
        lines.append(f"damaged     {run.damaged}: shown as missing")
    if run.tags or run.notes:
        lines.append(f"tags        {', '.join(run.tags) or '-'}; notes: {run.notes or '-'}")
    latency = summary.get("latency_ms")
    if latency:
        lines += ["", table(LATENCY_COLUMNS, [tuple(milliseconds(latency[k]) for k in LATENCY_COLUMNS)]),
                  "", f"throughput  {per_second(summary.get('throughput_per_s'))} items/s"]
    for figure in run.energy:
        value = (f"{figure.joules_per_inference * 1e3:.3f} mJ/inference ({figure.source})"
                 if figure.joules_per_inference is not None else f"unavailable: {figure.unavailable_reason}")
        lines.append(f"energy      {figure.device}: {value}")
    return "\n".join(lines)


def comparison_text(comparison: Comparison) -> str:
    labels = [f"run {run.run_id}" for run in comparison.runs]
    rows = [(name, *(_statistic(name, value) for value in values)) for name, values in comparison.statistics_table()]
    lines = [table(("statistic", *labels), rows), ""]
    for pair in comparison.pairs:
        lines.append(pair.explanation)
    for row in comparison.energy:
        values = [f"{v * 1e3:.3f} mJ" if v is not None else MISSING for v in row.joules_per_inference]
        lines.append(f"energy per inference on {row.device} ({row.source or 'unavailable'}): " + ", ".join(values))
    lines += [f"warning: {warning}" for warning in comparison.warnings]
    return "\n".join(lines)


def _statistic(name: str, value: float | None) -> str:
    if value is None:
        return MISSING
    if name == "count":
        return f"{value:,}"
    if name == "throughput_per_s":
        return per_second(value)
    return milliseconds(value)
