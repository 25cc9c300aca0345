"""The headline figures of a result as typed rows a view lays out (tiles, a summary table, a status line), so the
GUI reads no result dicts and writes a missing value as the CLI does: "n/a", never 0."""

from __future__ import annotations

from dataclasses import dataclass

from core.latency_stats import LatencyStats
from engine.measure.max_rate import MaxRateResult
from engine.measure.scenarios import ScenarioResult
from studio.present.benchmarks import cold_start_total_ms, scenario_headline
from studio.present.numbers import MISSING, number
from studio.usecases.bench_reports import BenchOutcome, BenchReport, ScenarioReport
from studio.usecases.generation import GenerateReport
from studio.usecases.optimization import OptimizeReport

# A LoadGen headline figure (ScenarioResult.headline()) -> its label and unit.
_SCENARIO_FIGURES = {"p90_ms": ("p90 latency", "ms"), "p99_ms": ("p99 latency", "ms"),
                     "items_per_s": ("throughput", "items/s"), "latency_bound_ms": ("p99 bound", "ms"),
                     "bound_held": ("bound held", ""), "target_qps": ("target rate", "queries/s"),
                     "scheduled_qps": ("scheduled rate", "queries/s"), "completed_qps": ("completed rate", "queries/s")}


@dataclass(frozen=True)
class Headline:
    """One figure: what it is, its value as written ("n/a" when it was not measured), and its unit ("" for none)."""

    label: str
    value: str
    unit: str


def bench_headlines(outcome: BenchOutcome) -> list[Headline]:
    """The figures a benchmark is judged on: latency and throughput, or the scenario's verdict and headline, or the
    maximum rate that held the bound; then energy per inference on each device that measured it."""
    match outcome:
        case BenchReport(result=result):
            rows = [Headline("status", result.status, ""), Headline("samples", f"{result.stats.count:,}", ""),
                    *_latency_rows(result.stats, ("p50", "p99")),
                    Headline("throughput", number(result.stats.throughput_per_s, ",.1f"), "items/s"),
                    Headline("cold start", number(cold_start_total_ms(result.cold_start), ".1f"), "ms")]
        case ScenarioReport(result=ScenarioResult() as scenario):
            rows = [Headline("scenario", f"{scenario.settings.scenario} {scenario.validity.label}", ""),
                    *(_scenario_figure(key, value) for key, value in scenario.headline().items()),
                    Headline("queries", f"{scenario.queries:,}", "")]
        case ScenarioReport(result=MaxRateResult() as search):
            rows = [Headline("max rate", number(search.max_rate_qps, ",.1f"), "queries/s"),
                    Headline("p99 bound", f"{search.latency_bound_ms:g}", "ms"),
                    Headline("capacity", number(search.capacity_qps, ",.1f"), "queries/s"),
                    Headline("rates tried", str(len(search.trials)), "")]
    return rows + _energy_rows(outcome.telemetry, "energy per inference", "energy_per_inference_j", 1.0)


def outcome_line(outcome: BenchOutcome) -> str:
    """A finished benchmark in one line, with where it was saved (or why it was not)."""
    match outcome:
        case BenchReport(result=result):
            text = (f"{result.status}: {result.stats.count} iterations, "
                    f"p50 {number(result.stats.p50_ms, '.3f')} ms")
        case ScenarioReport(result=ScenarioResult() as scenario):
            reasons = f" ({'; '.join(scenario.validity.reasons)})" if scenario.validity.reasons else ""
            text = (f"{scenario.settings.scenario} {scenario.validity.label}{reasons}: "
                    f"{scenario_headline(scenario)}")
        case ScenarioReport(result=MaxRateResult() as search):
            text = (f"{search.status}: max rate {number(search.max_rate_qps, ',.1f')} queries/s with p99 ≤ "
                    f"{search.latency_bound_ms:g} ms")
    if outcome.save_error:
        return f"{text}; NOT saved: {outcome.save_error}"
    return f"{text}; " + (f"saved as run {outcome.run_id}" if outcome.run_id else "not saved")


def generation_headlines(report: GenerateReport) -> list[Headline]:
    """Time to first token and per output token, tokens/s, and the figures of the request's mode; then energy per
    generated token on each device that measured it."""
    result, mode = report.result, report.request.mode
    if mode == "prefix_reuse":
        rows = [Headline("TTFT p50 without reuse", number(result.ttft_without.p50_ms, ".3f"), "ms"),
                Headline("TTFT p50 with reuse", number(result.ttft_with.p50_ms, ".3f"), "ms"),
                Headline("TTFT speedup", number(result.ttft_speedup, ".2f"), "×"),
                Headline("shared prefix prefill", number(result.prefix_prefill_ms, ".3f"), "ms")]
    elif mode == "serving":
        rows = [Headline("throughput", number(result.throughput_tokens_per_s, ",.1f"), "tokens/s"),
                *_latency_rows(result.ttft, ("p50", "p99"), "TTFT"), *_latency_rows(result.tpot, ("p99",), "TPOT"),
                *_latency_rows(result.queue, ("p99",), "queueing"),
                Headline("mean decode batch", number(result.mean_batch, ".2f"), ""),
                Headline("requests", str(len(result.requests)), "")]
    elif mode == "kv_cache_comparison":
        with_cache, without = result.with_cache.summary, result.without_cache.summary
        rows = [Headline("decode with the cache", number(with_cache.decode_tokens_per_s, ",.1f"), "tokens/s"),
                Headline("decode without the cache", number(without.decode_tokens_per_s, ",.1f"), "tokens/s"),
                Headline("decode speedup", number(result.decode_speedup, ".2f"), "×")]
    elif mode == "rate_sweep":
        rows = [Headline("arrival rates measured", str(len(result.points)), ""),
                Headline("capacity", number(result.capacity_tokens_per_s, ",.1f"), "tokens/s")]
    else:
        summary = result.summary
        rows = [*_latency_rows(summary.ttft, ("p50", "p99"), "TTFT"), *_latency_rows(summary.tpot, ("p50", "p99"), "TPOT"),
                Headline("prefill", number(summary.prefill_tokens_per_s, ",.1f"), "tokens/s"),
                Headline("decode", number(summary.decode_tokens_per_s, ",.1f"), "tokens/s"),
                Headline("output", number(summary.output_tokens_per_s, ",.1f"), "tokens/s")]
    tokens = report.generated_tokens
    return ([Headline("status", result.status, ""), Headline("generated tokens", f"{tokens:,}", ""), *rows]
            + _energy_rows(report.telemetry, "energy per token", "energy_j", 1.0 / tokens if tokens else None))


def _latency_rows(stats: LatencyStats, percentiles: tuple[str, ...], what: str = "latency") -> list[Headline]:
    """A percentile from too few samples to mean much carries a `*`, as in the console's tables."""
    return [Headline(f"{what} {name}", number(stats.percentile(name), ".3f")
                     + ("*" if stats.count and name in stats.unreliable_percentiles else ""), "ms")
            for name in percentiles]


def _scenario_figure(key: str, value: float | bool | None) -> Headline:
    label, unit = _SCENARIO_FIGURES.get(key, (key.replace("_", " "), ""))
    if isinstance(value, bool):
        return Headline(label, "yes" if value else "no", unit)
    return Headline(label, number(value, ",.3f"), unit)


def _energy_rows(telemetry: dict | None, label: str, field: str, scale: float | None) -> list[Headline]:
    """Energy in mJ on each device whose counters measured it; `scale` turns the summary's figure into the row's."""
    if telemetry is None:
        return []
    return [Headline(f"{label} ({device})",
                     MISSING if scale is None else number(figures[field] * scale * 1e3, ".3f"), "mJ")
            for device, figures in telemetry["devices"].items() if figures[field] is not None]


def optimization_headline(report: OptimizeReport) -> str:
    """The one word a view puts over an optimization: "Optimized" only for a result that met its budget."""
    result = report.result
    if result.accepted:
        return "Optimized"
    return "Rejected: below budget" if result.status == "budget_not_met" else "Rejected: not judged on these inputs"
