"""What do the KV cache, prefix reuse and dynamic batching buy a language model on this CPU?

A random-weight Llama of about 32M parameters (hidden 512, 8 layers; the
`bench` preset of engine.generative.random_models) is written to a temp folder,
loaded once in float32, and measured with 1 and 2 torch threads side by side:

1. KV cache on vs off: decode tokens/s at P=128, N=64. Target ≥ 3×.
2. Prefix reuse: TTFT (p50) with a shared 256-token prefix + 32 own tokens,
   with vs without reusing the prefix's cache. Target ≥ 3×.
3. Dynamic batching: throughput (generated tokens/s) of 16 requests all arriving
   at once (saturation), decode steps batched up to 8, vs the same requests
   served one at a time. Target ≥ 1.5× with 2 threads (2 cores).

Then, for context: throughput and latency at arrival rates below saturation
(MLPerf server style), int8 dynamic quantization (decode speed and perplexity),
and the ONNX Runtime GenAI path. A missed target is followed by a profile of
the slow step. Never asserted in tests.

    .venv/bin/python benchmarks/generation_gains.py [--skip-extras]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from engine.device.cpu_info import cpu_info
from engine.generative.benchmark import compare_kv_cache, run_generation_benchmark
from engine.generative.loading import CausalLM, load_causal_lm, torch_threads
from engine.generative.prefix_reuse import run_prefix_reuse_benchmark
from engine.generative.random_models import PRESETS, build_random_causal_lm
from engine.generative.serving import run_serving_benchmark
from engine.generative.settings import (
    GenerationSettings,
    PrefixReuseSettings,
    ServingSettings,
)

THREADS = (1, 2)
KV_TARGET, PREFIX_TARGET, BATCHING_TARGET = 3.0, 3.0, 1.5
KV_SETTINGS = GenerationSettings(prompt_tokens=128, new_tokens=64, requests=2, warmup_requests=1)
PREFIX_SETTINGS = PrefixReuseSettings(shared_prefix_tokens=256, suffix_tokens=32, new_tokens=4, requests=6)
SERVING = ServingSettings(requests=16, prompt_tokens=64, new_tokens=32, max_batch=8)


def row(label: str, values: list[float | None], unit: str = "", target: str = "") -> None:
    cells = "".join(f"{'—' if v is None else f'{v:,.1f}{unit}':>14}" for v in values)
    print(f"  {label:<40}{cells}  {target}")


def verdict(ratio: float | None, target: float) -> str:
    if ratio is None:
        return f"target ≥ {target:g}×: not measured"
    return f"target ≥ {target:g}×: {'met' if ratio >= target else 'MISSED'}"


def kv_cache(lm: CausalLM) -> dict[int, object]:
    print(f"\n1. KV cache on vs off, decode tokens/s (P={KV_SETTINGS.prompt_tokens}, N={KV_SETTINGS.new_tokens}, "
          f"{KV_SETTINGS.requests} requests)")
    results = {t: compare_kv_cache(lm, KV_SETTINGS, threads=t) for t in THREADS}
    row("cache on", [results[t].with_cache.summary.decode_tokens_per_s for t in THREADS])
    row("cache off", [results[t].without_cache.summary.decode_tokens_per_s for t in THREADS])
    row("  mean decode step, cache on (ms)", [results[t].with_cache.summary.tpot.mean_ms for t in THREADS])
    row("  mean decode step, cache off (ms)", [results[t].without_cache.summary.tpot.mean_ms for t in THREADS])
    speedups = [results[t].decode_speedup for t in THREADS]
    row("speedup", speedups, "×", verdict(min(s or 0 for s in speedups), KV_TARGET))
    print(f"  greedy outputs identical with and without the cache: "
          f"{all(results[t].outputs_identical for t in THREADS)}")
    return {t: results[t].decode_speedup for t in THREADS}


def prefix_reuse(lm: CausalLM) -> dict[int, float | None]:
    s = PREFIX_SETTINGS
    print(f"\n2. Prefix reuse, TTFT p50 in ms (shared prefix {s.shared_prefix_tokens} + {s.suffix_tokens} own tokens, "
          f"{s.requests} requests)")
    results = {t: run_prefix_reuse_benchmark(lm, s, threads=t) for t in THREADS}
    row("without reuse (prefill all)", [results[t].ttft_without.percentiles_ms["p50"] for t in THREADS])
    row("with reuse (prefill own tokens only)", [results[t].ttft_with.percentiles_ms["p50"] for t in THREADS])
    row("  prefix prefill, paid once (ms)", [results[t].prefix_prefill_ms for t in THREADS])
    speedups = [results[t].ttft_speedup for t in THREADS]
    row("speedup", speedups, "×", verdict(min(s or 0 for s in speedups), PREFIX_TARGET))
    print(f"  greedy outputs identical with and without reuse: "
          f"{all(all(results[t].outputs_identical) for t in THREADS)}")
    return {t: results[t].ttft_speedup for t in THREADS}


def batching(lm: CausalLM) -> dict[int, float | None]:
    print(f"\n3. Dynamic batching, generated tokens/s ({SERVING.requests} requests arriving at once, "
          f"P={SERVING.prompt_tokens}, N={SERVING.new_tokens})")
    sequential = {t: run_serving_benchmark(lm, replace(SERVING, max_batch=1), threads=t) for t in THREADS}
    batched = {t: run_serving_benchmark(lm, SERVING, threads=t) for t in THREADS}
    row("sequential (one request at a time)", [sequential[t].throughput_tokens_per_s for t in THREADS])
    row(f"batched decode (up to {SERVING.max_batch})", [batched[t].throughput_tokens_per_s for t in THREADS])
    row("  mean batch size", [batched[t].mean_batch for t in THREADS])
    row("  mean decode step, sequential (ms)", [sequential[t].steps.latencies_ns.mean() / 1e6 for t in THREADS])
    row("  mean decode step, batched (ms)", [batched[t].steps.latencies_ns.mean() / 1e6 for t in THREADS])
    row("  TTFT p50 batched (ms)", [batched[t].ttft.percentiles_ms["p50"] for t in THREADS])
    speedups = {t: _ratio(batched[t].throughput_tokens_per_s, sequential[t].throughput_tokens_per_s) for t in THREADS}
    row("speedup", list(speedups.values()), "×", verdict(speedups[2], BATCHING_TARGET) + " (2 threads)")
    print("  every request's tokens equal serving it alone: "
          f"{_same_tokens(sequential[2].requests, batched[2].requests)}")
    saturation_rate = batched[2].throughput_tokens_per_s / SERVING.new_tokens
    return speedups | {"saturation_requests_per_s": saturation_rate}


def rate_sweep(lm: CausalLM, saturation_requests_per_s: float) -> None:
    print("\n   Server scenario, 2 threads: Poisson arrivals (seed 0) below and at the saturation rate "
          f"({saturation_requests_per_s:.2f} requests/s)")
    print(f"  {'rate (req/s)':>14}{'tokens/s':>12}{'TTFT p50':>11}{'TTFT p99':>11}{'TPOT p99':>11}"
          f"{'queue p99':>11}{'mean batch':>12}")
    for share in (0.25, 0.5, 1.0):
        rate = share * saturation_requests_per_s
        result = run_serving_benchmark(lm, replace(SERVING, rate_per_s=rate), threads=2)
        p = result.ttft.percentiles_ms
        print(f"  {rate:>14.2f}{result.throughput_tokens_per_s:>12.1f}{p['p50']:>9.1f}ms{p['p99']:>9.1f}ms"
              f"{result.tpot.percentiles_ms['p99']:>9.1f}ms{result.queue.percentiles_ms['p99']:>9.1f}ms"
              f"{result.mean_batch:>12.2f}")
    print("  (16 requests per rate: p99 is marked unreliable below 100 samples; it is the maximum here)")


def extras(lm: CausalLM, folder: Path, workdir: Path) -> None:
    from engine.generative.quantization import quantize_with_fidelity

    settings = GenerationSettings(prompt_tokens=128, new_tokens=32, requests=3)
    base = {t: run_generation_benchmark(lm, settings, threads=t).summary.decode_tokens_per_s for t in THREADS}
    print("\n   Weight-only int8 (torch dynamic quantization of every Linear but the head), decode tokens/s")
    quantized, report = quantize_with_fidelity(lm, "int8-dynamic")
    fast = {t: run_generation_benchmark(quantized, settings, threads=t).summary.decode_tokens_per_s for t in THREADS}
    row("float32", [base[t] for t in THREADS])
    row("int8 dynamic", [fast[t] for t in THREADS])
    row("speedup", [_ratio(fast[t], base[t]) for t in THREADS], "×")
    print(f"  perplexity on the sample text: {report.perplexity_before.value:.2f} → "
          f"{report.perplexity_after.value:.2f} ({report.perplexity_increase:+.3%}); "
          f"weights {report.weight_bytes_before / 1e6:.1f} → "
          f"{report.weight_bytes_after / 1e6:.1f} MB")
    if importlib.util.find_spec("onnxruntime_genai") is None:
        print("\n   ONNX Runtime GenAI: not installed (pip install onnxruntime-genai)")
        return
    from engine.generative.onnx_genai import (
        GenAIModel,
        export_genai_model,
        run_genai_benchmark,
    )

    exported = export_genai_model(folder, workdir / "onnx")
    onnx = {t: run_genai_benchmark(GenAIModel(exported, threads=t), settings) for t in THREADS}
    print("\n   ONNX Runtime GenAI (model builder export, fp32, past key values), decode tokens/s")
    row("PyTorch", [base[t] for t in THREADS])
    row("ONNX Runtime GenAI", [onnx[t].summary.decode_tokens_per_s for t in THREADS])
    row("  TTFT p50, ONNX Runtime GenAI (ms)", [onnx[t].summary.ttft.percentiles_ms["p50"] for t in THREADS])


def profile_step(lm: CausalLM, what: str, settings: GenerationSettings) -> None:
    """Where a decode step spends its time, printed when a target is missed."""
    import torch

    print(f"\n  profile of {what} (2 threads), top operators by self CPU time:")
    with torch_threads(2), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        run_generation_benchmark(lm, settings, threads=2)
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _same_tokens(first, second) -> bool:
    return [r.output_ids for r in first] == [r.output_ids for r in second]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-extras", action="store_true", help="only the three targets")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="bench", help="'tiny' checks the script quickly")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="generation-gains-") as workdir:
        folder = build_random_causal_lm(Path(workdir) / "model", preset=args.preset, seed=0)
        lm = load_causal_lm(folder, dtype="float32")
        shape = PRESETS[args.preset]
        cpu = cpu_info()
        print(f"random Llama, {lm.parameter_count / 1e6:.1f}M parameters (hidden {shape.hidden}, "
              f"{shape.layers} layers, {shape.heads} heads / {shape.kv_heads} KV heads, "
              f"vocabulary {shape.vocab}), float32")
        print(f"CPU: {cpu.model}, {cpu.logical_cores} logical cores; columns: 1 thread, 2 threads; "
              f"load average at start {os.getloadavg()[0]:.2f} (other processes share these cores)")
        kv = kv_cache(lm)
        prefix = prefix_reuse(lm)
        served = batching(lm)
        rate_sweep(lm, served["saturation_requests_per_s"])
        if not args.skip_extras:
            extras(lm, folder, Path(workdir))
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
        if min(v or 0 for v in kv.values()) < KV_TARGET:
            profile_step(lm, "decoding without the KV cache", replace(KV_SETTINGS, use_cache=False, requests=1))
        if min(v or 0 for v in prefix.values()) < PREFIX_TARGET:
            profile_step(lm, "prefill of the shared prefix + own tokens", replace(KV_SETTINGS, prompt_tokens=288,
                                                                                new_tokens=1, requests=3))
        if (served[2] or 0) < BATCHING_TARGET:
            profile_step(lm, "a sequential decode step", replace(KV_SETTINGS, new_tokens=32, requests=2))


if __name__ == "__main__":
    main()
