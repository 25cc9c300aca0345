"""A benchmark's outcome as `bench` and the demo print it: the plain timed loop, a LoadGen-style scenario, or the
server scenario's maximum-rate search. Percentiles from too few samples carry a `*`, explained under the table."""

from __future__ import annotations

from core.latency_stats import LatencyStats
from engine.measure.max_rate import MaxRateResult
from engine.measure.prepared_session import ColdStart
from engine.measure.scenarios import ScenarioResult
from studio.present.dims import dim_choice_lines
from studio.present.models import model_line
from studio.present.numbers import milliseconds, per_second
from studio.present.tables import table
from studio.present.telemetry import telemetry_summary_text
from studio.usecases.bench_reports import BenchOutcome, BenchReport, ScenarioReport

LATENCY_COLUMNS = ("mean", "std", "min", "p50", "p90", "p95", "p99", "max")


def outcome_text(outcome: BenchOutcome) -> str:
    match outcome:
        case BenchReport():
            return bench_text(outcome)
        case ScenarioReport():
            return scenario_text(outcome)


def bench_text(report: BenchReport) -> str:
    result, inputs = report.result, report.inputs
    stats = result.stats
    unreliable = set(stats.unreliable_percentiles)
    lines = [
        model_line(report.model),
        _device_line(report),
        f"inputs      {inputs.source}: " + ", ".join(f"{name} {'×'.join(map(str, array.shape))} {array.dtype.name}"
                                                   for name, array in inputs.feed.items()),
    ]
    lines += dim_choice_lines(inputs.dim_choices)
    lines += [
        f"status      {result.status}",
        "",
        cold_start_line(result.cold_start),
        "",
        table(("samples", *LATENCY_COLUMNS),
              [(stats.count, *(milliseconds(latency_ms(stats, k)) + ("*" if k in unreliable else "")
                               for k in LATENCY_COLUMNS))]),
        "",
        f"throughput  {per_second(stats.throughput_per_s)} items/s (batch {result.batch_size})",
    ]
    if unreliable:
        lines.append(f"* {', '.join(sorted(unreliable))} from too few samples to mean much (p99 needs ≥ 100); run longer")
    lines += _telemetry_lines(report)
    if report.run_id:
        lines.append(f"saved as run {report.run_id} (compare it with: runs compare {report.run_id} OTHER_ID)")
    return "\n".join(lines)


def scenario_text(report: ScenarioReport) -> str:
    lines = [model_line(report.model), _device_line(report), ""]
    match report.result:
        case MaxRateResult() as search:
            lines += _max_rate_lines(search)
        case ScenarioResult() as scenario:
            lines += _scenario_lines(scenario)
    lines += _telemetry_lines(report)
    if report.run_id:
        lines.append(f"saved as run {report.run_id}")
    return "\n".join(lines)


def cold_start_total_ms(cold: ColdStart) -> float:
    """Load, session creation and the first inference: what a user waits for before the first result."""
    return cold.load_ms + cold.session_ms + cold.first_inference_ms


def cold_start_line(cold: ColdStart) -> str:
    return (f"cold start  load {milliseconds(cold.load_ms)}  session {milliseconds(cold.session_ms)}  "
            f"first inference {milliseconds(cold.first_inference_ms)}  total {milliseconds(cold_start_total_ms(cold))}")


def latency_ms(stats: LatencyStats, column: str) -> float | None:
    """One of LATENCY_COLUMNS (mean, std, min, p50…p99, max) in ms."""
    return getattr(stats, f"{column}_ms")


def scenario_headline(scenario: ScenarioResult) -> str:
    """The figures LoadGen reports for the scenario, as one line."""
    return ", ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scenario.headline().items())


def _scenario_lines(scenario: ScenarioResult) -> list[str]:
    latency, validity = scenario.latency, scenario.validity
    service = LatencyStats.of(scenario.service_ns, wall_ns=scenario.duration_ns)
    queueing = LatencyStats.of(scenario.queueing_ns, wall_ns=scenario.duration_ns)
    return [f"scenario    {scenario.settings.scenario}: {validity.label}"
            + (f" ({'; '.join(validity.reasons)})" if validity.reasons else ""),
            f"headline    {scenario_headline(scenario)}",
            "", table(("queries", "mean", "p50", "p90", "p99", "max"), [
                (scenario.queries, *(milliseconds(latency_ms(latency, k)) for k in ("mean", "p50", "p90", "p99", "max")))]),
            f"throughput  {per_second(scenario.throughput_per_s)} items/s; service p50 {milliseconds(service.p50_ms)}; "
            f"queueing mean {milliseconds(queueing.mean_ms)}"]


def _max_rate_lines(search: MaxRateResult) -> list[str]:
    bound = f"{search.latency_bound_ms:g} ms"
    best = search.max_rate_qps
    return [f"server scenario, p99 bound {bound}; capacity (1 / median service time) "
            f"{search.capacity_qps:,.1f} queries/s",
            table(("rate q/s", "p99 ms", "queries", "held", "why not"), [
                (f"{t.rate_qps:,.1f}", milliseconds(t.p99_ms).removesuffix(" ms"), t.result.queries,
                 "yes" if t.held else "no", "; ".join(t.validity_reasons)) for t in search.trials]),
            f"MAX RATE with p99 ≤ {bound}: "
            + (f"{best:,.1f} queries/s" if best else "none of the rates tried held the bound"),
            f"note: {search.note}"]


def _device_line(report: BenchOutcome) -> str:
    device, runner = report.device, report.runner
    return f"device      {device.id} {device.name} via {runner.backend}:{runner.provider}"


def _telemetry_lines(report: BenchOutcome) -> list[str]:
    if report.telemetry is None:
        return []
    return ["", telemetry_summary_text(report.telemetry, report.request.telemetry_hz)]
