"""What a sweep's measured points say: the frontier, the fastest point under a latency limit, the most frugal one.

Works on point summaries only (no samples), so a resumed sweep analyses points measured in earlier sessions
from their stored summaries just like the ones measured now.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.latency_stats import min_samples_for
from engine.sweep.grid import PointSummary


@dataclass(frozen=True)
class Choice:
    summary: PointSummary | None
    reason: str  # why this point, or why none

    def to_dict(self) -> dict:
        return {"key": self.summary.key if self.summary else None,
                "point": self.summary.point.to_dict() if self.summary else None, "reason": self.reason}


@dataclass(frozen=True)
class GridTable:
    """One heat map: rows are batch sizes, columns thread counts, for one provider and recipe."""

    provider: str
    recipe: str | None
    batches: tuple[int, ...]
    threads: tuple[int | None, ...]
    cells: tuple[tuple[PointSummary | None, ...], ...]  # cells[row][column]; None where not measured

    def values(self, metric: str = "throughput_per_s") -> list[list[float | None]]:
        def value(summary: PointSummary | None) -> float | None:
            if summary is None or summary.status != "completed":
                return None
            return summary.latency_ms(metric) if metric.startswith("p") else getattr(summary, metric)

        return [[value(cell) for cell in row] for row in self.cells]

    def to_dict(self) -> dict:
        return {"provider": self.provider, "recipe": self.recipe, "batches": list(self.batches),
                "threads": list(self.threads), "keys": [[c.key if c else None for c in row] for row in self.cells],
                "throughput_per_s": self.values("throughput_per_s")}


@dataclass(frozen=True)
class SweepAnalysis:
    percentile: str
    latency_limit_ms: float | None
    frontier: tuple[PointSummary, ...]  # by rising latency
    fastest: Choice
    most_efficient: Choice
    tables: tuple[GridTable, ...]
    failed: tuple[PointSummary, ...]

    def to_dict(self) -> dict:
        return {"percentile": self.percentile, "latency_limit_ms": self.latency_limit_ms,
                "frontier": [s.key for s in self.frontier], "fastest": self.fastest.to_dict(),
                "most_efficient": self.most_efficient.to_dict(), "tables": [t.to_dict() for t in self.tables],
                "failed": [{"key": s.key, "error": s.error} for s in self.failed]}


def analyze_sweep(summaries: Iterable[PointSummary], *, latency_limit_ms: float | None = None,
                  percentile: str = "p99") -> SweepAnalysis:
    everything = list(summaries)
    usable = _usable(everything, percentile)
    return SweepAnalysis(percentile, latency_limit_ms, frontier(usable, percentile),
                         fastest_under_limit(usable, latency_limit_ms, percentile), most_efficient(usable),
                         grid_tables(everything), tuple(s for s in everything if s.status == "failed"))


def frontier(summaries: Sequence[PointSummary], percentile: str = "p99") -> tuple[PointSummary, ...]:
    """The points no other point beats on both latency and throughput (the Pareto set), by rising latency."""
    points = sorted(_usable(summaries, percentile), key=lambda s: (s.latency_ms(percentile), -s.throughput_per_s))
    kept: list[PointSummary] = []
    best_throughput = float("-inf")
    for summary in points:  # each point kept must beat the throughput of every faster-latency point
        if summary.throughput_per_s > best_throughput:
            kept.append(summary)
            best_throughput = summary.throughput_per_s
    return tuple(kept)


def fastest_under_limit(summaries: Sequence[PointSummary], limit_ms: float | None, percentile: str = "p99") -> Choice:
    """The highest throughput whose latency percentile is within the limit (any latency when there is none)."""
    points = _usable(summaries, percentile)
    if not points:
        return Choice(None, "no point finished with a latency measured")
    within = points if limit_ms is None else [s for s in points if s.latency_ms(percentile) <= limit_ms]
    if not within:
        lowest = min(points, key=lambda s: s.latency_ms(percentile))
        return Choice(None, f"no point kept {percentile} within {limit_ms:g} ms; the lowest was "
                            f"{lowest.latency_ms(percentile):.3f} ms ({lowest.point.label()})")
    best = max(within, key=lambda s: (s.throughput_per_s, -s.latency_ms(percentile)))
    reason = (f"highest throughput ({best.throughput_per_s:.1f} items/s) with {percentile} "
              f"{best.latency_ms(percentile):.3f} ms")
    reason += f" within {limit_ms:g} ms" if limit_ms is not None else " (no latency limit given)"
    if best.samples < min_samples_for(float(percentile[1:])):
        reason += f"; {percentile} rests on only {best.samples} samples"
    return Choice(best, reason)


def most_efficient(summaries: Sequence[PointSummary]) -> Choice:
    """The most items per joule among points whose energy was measured; otherwise why it cannot be said."""
    measured = [s for s in summaries if s.status == "completed" and s.items_per_joule is not None]
    if measured:
        best = max(measured, key=lambda s: s.items_per_joule)
        return Choice(best, f"{best.items_per_joule:.1f} items per joule ({best.energy_source})")
    reasons = sorted({s.energy_unavailable for s in summaries if s.energy_unavailable})
    why = "; ".join(reasons) if reasons else "no energy figure was recorded for any point"
    return Choice(None, f"energy was not measured: {why}")


def grid_tables(summaries: Iterable[PointSummary]) -> tuple[GridTable, ...]:
    """One batch × threads table per (provider, recipe), in the order the values first appear."""
    by_group: dict[tuple[str, str | None], dict[tuple[int, int | None], PointSummary]] = {}
    for summary in summaries:
        point = summary.point
        by_group.setdefault((point.provider, point.recipe), {})[(point.batch, point.threads)] = summary
    tables = []
    for (provider, recipe), cells in by_group.items():
        batches = tuple(sorted({batch for batch, _ in cells}))
        threads = tuple(sorted({t for _, t in cells}, key=lambda t: (t is None, t or 0)))
        rows = tuple(tuple(cells.get((batch, t)) for t in threads) for batch in batches)
        tables.append(GridTable(provider, recipe, batches, threads, rows))
    return tuple(tables)


def grid_text(table: GridTable, *, percentile: str = "p99", marks: dict[str, str] | None = None) -> str:
    """A printable grid: throughput (items/s) and latency per cell; `marks` tag cells by key (e.g. '*')."""
    marks = marks or {}
    header = ["batch \\ threads", *("default" if t is None else str(t) for t in table.threads)]
    lines = [f"{table.provider} / {table.recipe or 'original'}: items/s ({percentile} ms)",
             "  ".join(f"{h:>22}" for h in header)]
    for batch, row in zip(table.batches, table.cells):
        texts = [f"{batch:>22}"]
        for cell in row:
            if cell is None:
                text = "-"
            elif cell.status != "completed":
                text = cell.status
            else:
                text = f"{cell.throughput_per_s:.1f} ({cell.latency_ms(percentile):.2f}){marks.get(cell.key, '')}"
            texts.append(f"{text:>22}")
        lines.append("  ".join(texts))
    return "\n".join(lines)


def _usable(summaries: Iterable[PointSummary], percentile: str) -> list[PointSummary]:
    return [s for s in summaries if s.status == "completed" and s.throughput_per_s is not None
            and s.latency_ms(percentile) is not None]
