"""A layer profile for people: the timed run it follows, what profiling cost, then where the time went."""

from __future__ import annotations

from engine.profiling.report import profile_text
from studio.present.numbers import number
from studio.usecases.profiles import ProfileReport


def profile_report_text(report: ProfileReport, top: int = 15) -> str:
    """The timed run's figures, the profiled run's overhead, and the `top` slowest nodes."""
    bench = report.bench
    stats = bench.result.stats
    where = f"saved as run {bench.run_id}" if bench.run_id else "not saved"
    lines = [f"timed run ({where}): {stats.count} iterations, p50 {number(stats.p50_ms, '.3f')} ms, "
             f"{number(stats.throughput_per_s, '.1f')} items/s"]
    if report.profile is None:
        return "\n".join(lines + [f"the timed run was {bench.result.status}: no profile was taken"])
    overhead = report.overhead
    lines.append(f"profiled run (separate, timing perturbed): median {number(overhead.profiled_median_ms, '.3f')} "
                 f"ms per inference, {number(overhead.ratio, '.2f')}x the timed median; "
                 + ("profile stored with the run" if report.stored else "profile not stored"))
    return "\n".join([*lines, "", profile_text(report.profile, top=top)])
