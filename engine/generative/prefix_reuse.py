"""Prefix reuse: requests that share a system prompt start from its cached KV state.

Each request is served twice, interleaved so that machine drift hits both alike:
once prefilling the whole prompt (shared prefix + its own suffix) from scratch,
once prefilling only its suffix on top of the prefix's cache. The prefix's own
prefill is timed apart (it is paid once, not per request). Greedy outputs of the
two ways must match, which the result reports request by request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from time import perf_counter_ns

import numpy as np

from core.latency_stats import LatencyStats
from core.progress import Progress
from engine.device.environment import fingerprint
from engine.generative import kv_cache
from engine.generative.benchmark import serve_request
from engine.generative.decoding import Decoder
from engine.generative.loading import CausalLM, check_fits, torch_threads
from engine.generative.memory import PeakMemory, PeakMemoryTracker
from engine.generative.prompts import random_prompts
from engine.generative.results import RequestRecord, summarize_requests
from engine.generative.settings import PrefixReuseSettings

PREFIX_STREAM = 1 << 41  # the prompt stream the shared prefix is drawn from
WARMUP_STREAM = 1 << 40


@dataclass(frozen=True)
class PrefixReuseResult:
    status: str
    settings: dict
    model: dict
    prefix_prefill_ms: float  # computing the shared prefix's cache once
    without_reuse: list[RequestRecord]
    with_reuse: list[RequestRecord]
    ttft_without: LatencyStats
    ttft_with: LatencyStats
    ttft_speedup: float | None  # median TTFT without reuse ÷ median TTFT with reuse
    outputs_identical: list[bool]  # per request: the same greedy tokens both ways
    memory: PeakMemory
    environment: dict

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "settings": self.settings,
            "model": self.model,
            "prefix_prefill_ms": self.prefix_prefill_ms,
            "ttft_without_reuse_ms": self.ttft_without.latency_dict(),
            "ttft_with_reuse_ms": self.ttft_with.latency_dict(),
            "ttft_speedup": self.ttft_speedup,
            "outputs_identical": self.outputs_identical,
            "memory": self.memory.to_dict(),
            "environment": self.environment,
        }


def run_prefix_reuse_benchmark(lm: CausalLM, settings: PrefixReuseSettings, *, threads: int | None = None,
                               cancel: threading.Event | None = None,
                               progress: Progress | None = None) -> PrefixReuseResult:
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    check_fits(lm, settings.shared_prefix_tokens + settings.suffix_tokens + settings.new_tokens)
    prefix = random_prompts(1, settings.shared_prefix_tokens, lm.vocab_size, settings.seed, request=PREFIX_STREAM)
    with torch_threads(threads):
        description = lm.describe()
        decoder = Decoder(lm)
        report(0.0, f"prefilling the shared prefix ({settings.shared_prefix_tokens} tokens)")
        prefix_tensors, prefix_ms = _prefix_cache(decoder, prefix)
        for k in range(settings.warmup_requests):
            if not cancel.is_set():
                _serve_both(decoder, prefix, prefix_tensors, settings, WARMUP_STREAM + k, cancel)
        without, with_reuse = [], []
        memory = PeakMemoryTracker(lm.device)
        memory.start()
        for k in range(settings.requests):
            if cancel.is_set():
                break
            report(0.1 + 0.9 * k / settings.requests, f"request {k + 1} of {settings.requests}, with and without reuse")
            full, reused = _serve_both(decoder, prefix, prefix_tensors, settings, k, cancel)
            without.append(full)
            with_reuse.append(reused)
            memory.sample()
        peak = memory.stop()
    status = "cancelled" if cancel.is_set() else "completed"
    report(1.0, status)
    ttft_without = summarize_requests(without, _wall(without)).ttft
    ttft_with = summarize_requests(with_reuse, _wall(with_reuse)).ttft
    slow, fast = ttft_without.percentiles_ms["p50"], ttft_with.percentiles_ms["p50"]
    return PrefixReuseResult(
        status=status,
        settings=settings.to_dict(),
        model=description,
        prefix_prefill_ms=prefix_ms,
        without_reuse=without,
        with_reuse=with_reuse,
        ttft_without=ttft_without,
        ttft_with=ttft_with,
        ttft_speedup=slow / fast if slow and fast else None,
        outputs_identical=[a.output_ids == b.output_ids for a, b in zip(without, with_reuse)],
        memory=peak,
        environment=fingerprint(description),
    )


def _prefix_cache(decoder: Decoder, prefix: np.ndarray) -> tuple[kv_cache.KVTensors, float]:
    cache = decoder.new_cache()
    start = perf_counter_ns()
    decoder.step(decoder.tensor(prefix), cache)
    decoder.synchronize()
    elapsed_ms = (perf_counter_ns() - start) / 1e6
    return kv_cache.layer_tensors(cache), elapsed_ms


def _serve_both(decoder: Decoder, prefix: np.ndarray, prefix_tensors: kv_cache.KVTensors,
                settings: PrefixReuseSettings, stream: int, cancel: threading.Event):
    suffix = random_prompts(1, settings.suffix_tokens, decoder.lm.vocab_size, settings.seed, request=stream)
    config = decoder.model.config
    full = serve_request(decoder, np.concatenate([prefix, suffix], axis=1), new_tokens=settings.new_tokens,
                         index=stream, cancel=cancel)
    reused = serve_request(decoder, suffix, new_tokens=settings.new_tokens, index=stream, cancel=cancel,
                           start_cache=lambda: kv_cache.cache_from_tensors(config, prefix_tensors))
    return full, reused


def _wall(records: list[RequestRecord]) -> int:
    return int(sum(r.total_ns for r in records))
