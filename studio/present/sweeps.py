"""A sweep for people: how each point was measured, a grid per provider and recipe, every point, the frontier, and
the fastest and most energy-efficient points with why."""

from __future__ import annotations

from engine.sweep.analysis import Choice, grid_text
from studio.present.numbers import number
from studio.present.tables import table
from studio.usecases.sweeps import SweepReport

MARKS = {"chosen": "*", "efficient": "e", "frontier": "^"}


def sweep_text(report: SweepReport) -> str:
    spec, analysis = report.spec, report.analysis
    rule = spec.stopping
    stop = (f"median's {rule.confidence:.0%} CI within ±{rule.ci_half_width:.0%}" if rule.adaptive
            else "the minimums only")
    lines = [f"sweep {report.sweep_id} of {report.model.name}: {len(spec.grid.points())} points in a random order "
             f"(seed {spec.seed}); {len(report.summaries) - len(report.skipped)} measured now, "
             f"{len(report.skipped)} done earlier",
             f"each point: {rule.warmup} warm-up, then at least {rule.min_iterations} iterations and "
             f"{rule.min_duration_s:g} s, until the {stop}, at most {rule.max_duration_s:g} s"]
    for label, recipe in report.recipes.items():
        lines.append(f"recipe {label}: " + (recipe.unavailable or f"optimized to {recipe.optimized_model}"
                                            if recipe.optimized_model or recipe.unavailable
                                            else "not needed: its points were measured earlier"))
    marks: dict[str, str] = {}
    for summary in analysis.frontier:
        marks[summary.key] = MARKS["frontier"]
    for choice, mark in ((analysis.most_efficient, MARKS["efficient"]), (analysis.fastest, MARKS["chosen"])):
        if choice.summary is not None:
            marks[choice.summary.key] = mark + marks.get(choice.summary.key, "")
    grid = spec.grid
    for grid_table in sorted(analysis.tables, key=lambda t: (grid.providers.index(t.provider),
                                                             grid.recipes.index(t.recipe))):
        lines += ["", grid_text(grid_table, percentile=spec.percentile, marks=marks)]
    lines += [f"marks: {MARKS['chosen']} fastest under the limit, {MARKS['efficient']} most items per joule, "
              f"{MARKS['frontier']} on the frontier", "", _points_table(report)]
    frontier = " -> ".join(f"{s.point.label()} ({s.latency_ms(spec.percentile):.3f} ms, {s.throughput_per_s:.1f}/s)"
                           for s in analysis.frontier)
    limit = f"under {spec.latency_limit_ms:g} ms {spec.percentile}" if spec.latency_limit_ms else "(no latency limit)"
    lines += ["", f"frontier ({spec.percentile} vs items/s): {frontier or 'no point finished'}",
              f"fastest {limit}: {_choice_text(report, analysis.fastest)}",
              f"most energy-efficient: {_choice_text(report, analysis.most_efficient)}"]
    failures: dict[str, list[str]] = {}
    for summary in analysis.failed:
        failures.setdefault(summary.error or "unknown error", []).append(summary.point.label())
    for error, labels in failures.items():
        lines.append(f"failed ({len(labels)} point{'s' if len(labels) > 1 else ''}: {'; '.join(labels)}): {error}")
    return "\n".join(lines)


def _choice_text(report: SweepReport, choice: Choice) -> str:
    if choice.summary is None:
        return choice.reason
    return f"{choice.summary.point.label()} (run {report.run_ids.get(choice.summary.key)}): {choice.reason}"


def _points_table(report: SweepReport) -> str:
    rows = []
    for s in report.summaries:
        p50, p99 = s.latency_ms("p50"), s.latency_ms("p99")
        spread = "-"
        if s.median_ci_ms and p50:
            spread = f"±{max(p50 - s.median_ci_ms[0], s.median_ci_ms[1] - p50) / p50:.1%}"
        rows.append((s.point.label(), s.status, s.samples, number(p50, ".3f"), number(p99, ".3f"),
                     number(s.throughput_per_s, ".1f"), spread,
                     "converged" if s.converged else ("time cap" if s.status == "completed" else "-"),
                     number(s.items_per_joule, ".1f"), report.run_ids.get(s.key, "-")))
    return table(("point", "status", "samples", "p50 ms", "p99 ms", "items/s", "median CI", "stopped by",
                  "items/J", "run"), rows)
