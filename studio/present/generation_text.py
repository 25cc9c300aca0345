"""Plain-text rendering of generate-bench reports, one body per mode, in the console's table style.

Percentiles computed from too few samples to mean much carry a `*` (DESIGN §4), explained under the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.latency_stats import LatencyStats
from engine.generative.memory import PeakMemory
from engine.generative.results import GenerationResult
from studio.present.numbers import byte_size, milliseconds, number, per_second
from studio.present.tables import table
from studio.present.telemetry import telemetry_summary_text
from studio.usecases.generation import GenerateReport, ModelUnderTest

if TYPE_CHECKING:  # their modules import torch, which a finished report has loaded already
    from engine.generative.benchmark import KvCacheComparison
    from engine.generative.prefix_reuse import PrefixReuseResult
    from engine.generative.serving import RateSweep, ServingResult

THIN = "*"
THIN_NOTE = f"{THIN} from too few samples to mean much"


def generation_text(report: GenerateReport) -> str:
    mode = report.request.mode
    lines = [*_model_lines(report.model), f"mode        {mode}; status {report.result.status}", ""]
    body, memories = _MODES[mode]
    lines += body(report.result)
    if report.quantization is not None:
        quantized = report.quantization
        lines.append(f"weights     {quantized.scheme} on {quantized.linear_layers_quantized} Linear layers: "
                     f"{byte_size(quantized.weight_bytes_before)} -> {byte_size(quantized.weight_bytes_after)}; "
                     f"perplexity {quantized.perplexity_before.value:.3f} -> {quantized.perplexity_after.value:.3f}")
    peak = max((memory.peak_rss_bytes for memory in memories(report.result)), default=0)
    if peak:
        lines.append(f"memory      peak RSS {byte_size(peak)}")
    if report.telemetry is not None:
        lines += ["", telemetry_summary_text(report.telemetry, report.request.telemetry_hz)]
        for device, figures in report.telemetry["devices"].items():
            if figures["energy_j"] is not None and report.generated_tokens:
                lines.append(f"  {device:<10}{figures['energy_j'] / report.generated_tokens * 1e3:.3f} mJ per "
                             "generated token")
    if report.run_id:
        lines.append(f"saved as run {report.run_id}")
    return "\n".join(lines)


def _model_lines(model: ModelUnderTest) -> list[str]:
    folder = model.folder
    if model.export is None:
        return [f"model       {folder.path} ({folder.model_type}, {model.parameter_count:,} parameters, "
                f"{model.dtype} on {model.device})"]
    export = model.export
    built = "from the cache" if export.export_ms is None else f"built in {export.export_ms / 1e3:.1f} s, now cached"
    return [f"model       {folder.path} ({folder.model_type}, ONNX Runtime GenAI {export.precision} on {model.device})",
            f"export      {export.path} ({built})"]


def _generation(result: GenerationResult) -> list[str]:
    summary = result.summary
    return [*_latency_table(("TTFT", summary.ttft), ("TPOT", summary.tpot)),
            f"tokens/s    prefill {per_second(summary.prefill_tokens_per_s)}, "
            f"decode {per_second(summary.decode_tokens_per_s)}, output {per_second(summary.output_tokens_per_s)}"]


def _serving(result: ServingResult) -> list[str]:
    return [*_latency_table(("TTFT", result.ttft), ("TPOT", result.tpot)),
            f"serving     {per_second(result.throughput_tokens_per_s)} tokens/s over {len(result.requests)} requests; "
            f"queue p99 {_percentile(result.queue, 'p99')}; mean batch {_mean_batch(result)}"]


def _prefix_reuse(result: PrefixReuseResult) -> list[str]:
    rows = [(name, *(_percentile(stats, k) for k in ("p50", "p99")), milliseconds(stats.mean_ms))
            for name, stats in (("without reuse", result.ttft_without), ("with reuse", result.ttft_with))]
    return [table(("TTFT", "p50", "p99", "mean"), rows), *_thin_note(result.ttft_without, result.ttft_with),
            f"TTFT speedup {_times(result.ttft_speedup)}; shared prefix prefilled once in "
            f"{milliseconds(result.prefix_prefill_ms)}; outputs identical: {all(result.outputs_identical)}"]


def _kv_cache_comparison(comparison: KvCacheComparison) -> list[str]:
    runs = (("with", comparison.with_cache), ("without", comparison.without_cache))
    rows = [(name, _percentile(run.summary.ttft, "p50"), _percentile(run.summary.tpot, "p50"),
             _percentile(run.summary.tpot, "p99"), per_second(run.summary.decode_tokens_per_s),
             per_second(run.summary.output_tokens_per_s)) for name, run in runs]
    identical = {True: "yes", False: "NO", None: "not compared (sampling)"}[comparison.outputs_identical]
    return [table(("KV cache", "TTFT p50", "TPOT p50", "TPOT p99", "decode tokens/s", "output tokens/s"), rows),
            *_thin_note(*(stats for _, run in runs for stats in (run.summary.ttft, run.summary.tpot))),
            f"KV cache    decode {_times(comparison.decode_speedup)} faster with the cache; "
            f"greedy outputs identical: {identical}"]


def _rate_sweep(sweep: RateSweep) -> list[str]:
    streams = [(f"{rate:g}", number(sweep.load(rate), ".0%"), point) for rate, point in sweep.rated_points]
    if sweep.all_at_once is not None:
        streams.append(("all at once", "", sweep.all_at_once))
    throughput = [(label, load, len(point.requests), per_second(point.throughput_tokens_per_s), _mean_batch(point),
                   _percentile(point.queue, "p99")) for label, load, point in streams]
    latency = [(label, *(_percentile(stats, name) for stats in (point.ttft, point.tpot, point.inter_token)
                         for name in ("p50", "p99"))) for label, _, point in streams]
    return [table(("rate/s", "load", "requests", "tokens/s", "mean batch", "queue p99"), throughput), "",
            table(("rate/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "ITL p50", "ITL p99"), latency),
            *_thin_note(*(stats for _, _, point in streams for stats in (point.queue, point.ttft, point.tpot,
                                                                        point.inter_token))),
            _saturation_line(sweep)]


def _saturation_line(sweep: RateSweep) -> str:
    saturation = sweep.saturation_rate_per_s
    if saturation is None:
        return "saturation  unknown: the all-at-once stream did not finish"
    beyond = sweep.rates_beyond_saturation
    verdict = (f"at {', '.join(f'{rate:g}' for rate in beyond)} requests/s arrivals outran it and queued" if beyond
               else "the server kept up at every rate tried")
    return (f"saturation  {saturation:,.2f} requests/s ({per_second(sweep.capacity_tokens_per_s)} tokens/s, "
            f"every request at once); {verdict}")


def _own_memory(result: GenerationResult | PrefixReuseResult | ServingResult) -> list[PeakMemory]:
    return [result.memory]


def _both_memories(comparison: KvCacheComparison) -> list[PeakMemory]:
    return [comparison.with_cache.memory, comparison.without_cache.memory]


def _stream_memories(sweep: RateSweep) -> list[PeakMemory]:
    return [stream.memory for stream in (*sweep.points, sweep.all_at_once) if stream is not None]


# mode -> (its body, the peak-memory figures of the runs its result is made of)
_MODES: dict[str, tuple[Callable[[object], list[str]], Callable[[object], list[PeakMemory]]]] = {
    "generation": (_generation, _own_memory), "serving": (_serving, _own_memory),
    "prefix_reuse": (_prefix_reuse, _own_memory), "kv_cache_comparison": (_kv_cache_comparison, _both_memories),
    "rate_sweep": (_rate_sweep, _stream_memories),
}


def _latency_table(*rows: tuple[str, LatencyStats]) -> list[str]:
    body = [(name, *(_percentile(stats, k) for k in ("p50", "p90", "p99")), milliseconds(stats.mean_ms))
            for name, stats in rows]
    return [table(("", "p50", "p90", "p99", "mean"), body), *_thin_note(*(stats for _, stats in rows))]


def _percentile(stats: LatencyStats, name: str) -> str:
    value = stats.percentile(name)
    return milliseconds(value) + (THIN if value is not None and name in stats.unreliable_percentiles else "")


def _thin_note(*stats: LatencyStats) -> list[str]:
    return [THIN_NOTE] if any(s.count and s.unreliable_percentiles for s in stats) else []


def _mean_batch(result: ServingResult) -> str:
    return number(result.mean_batch, ".2f")


def _times(ratio: float | None) -> str:
    return number(ratio, ".2f") + ("x" if ratio is not None else "")
