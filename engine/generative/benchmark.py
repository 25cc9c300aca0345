"""The generation benchmark: TTFT, every decode step, tokens/s and peak memory, with the KV cache on or off.

Measurement rules (DESIGN.md §4): warm-up requests are run first and never
counted; the first request's time is reported apart as cold start; the clock is
read with perf_counter_ns after the device has finished (the chosen tokens are
copied to the host, and CUDA is synchronized); the timed part runs until both the
request count and the minimum duration are reached, or until cancel, which takes
effect within one decode step. Building each step's input is inside the timed
step, as it is in a server; bookkeeping between steps is not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from time import perf_counter_ns

import numpy as np
import torch

from core.progress import Progress
from engine.device.environment import fingerprint
from engine.generative.decoding import Decoder
from engine.generative.loading import CausalLM, check_fits, torch_threads
from engine.generative.memory import PeakMemoryTracker
from engine.generative.prompts import random_prompts
from engine.generative.results import (
    GenerationResult,
    RequestRecord,
    summarize_requests,
)
from engine.generative.settings import GenerationSettings
from engine.measure.samples import SampleBuffer
from engine.measure.timed_loop import PROGRESS_INTERVAL_NS, time_iterations

WARMUP_STREAM = 1 << 40  # prompt stream offset for warm-up requests, so timed request k always gets the same prompt


def _no_progress(fraction: float, message: str) -> None:
    pass


def run_generation_benchmark(lm: CausalLM, settings: GenerationSettings, *, threads: int | None = None,
                             cancel: threading.Event | None = None, progress: Progress | None = None,
                             samples: SampleBuffer | None = None) -> GenerationResult:
    """Serve `settings.requests` requests one after another and time every step.

    `samples`, if given, receives (start, latency) of every prefill and decode step as it happens, for live
    plots. `threads` sets torch's intra-op threads for this run only.
    """
    cancel = cancel or threading.Event()
    report = progress or _no_progress
    check_fits(lm, settings.prompt_tokens + settings.new_tokens)
    with torch_threads(threads):
        description = lm.describe()
        decoder = Decoder(lm, do_sample=settings.do_sample, temperature=settings.temperature, top_k=settings.top_k,
                          seed=settings.seed)
        first_request_ms = None
        for k in range(settings.warmup_requests):
            if cancel.is_set():
                break
            report(0.1 * k / settings.warmup_requests, f"warm-up request {k + 1} of {settings.warmup_requests}")
            record = serve_request(decoder, _prompts(lm, settings, WARMUP_STREAM + k), new_tokens=settings.new_tokens,
                                   index=-1 - k, cancel=cancel, use_cache=settings.use_cache)
            first_request_ms = first_request_ms or record.total_ns / 1e6
        records, loop_start, loop_end, memory = _timed_requests(lm, decoder, settings, cancel, report, samples)
    if first_request_ms is None and records:
        first_request_ms = records[0].total_ns / 1e6
    status = "cancelled" if cancel.is_set() else "completed"
    report(1.0, status)
    return GenerationResult(
        status=status,
        settings=settings.to_dict(),
        model=description,
        cold_start={"load_ms": lm.load_ms, "first_request_ms": first_request_ms},
        requests=records,
        summary=summarize_requests(records, loop_end - loop_start),
        memory=memory,
        loop_start_ns=loop_start,
        loop_end_ns=loop_end,
        environment=fingerprint(description),
    )


def _timed_requests(lm: CausalLM, decoder: Decoder, settings: GenerationSettings, cancel: threading.Event,
                    report: Progress, samples: SampleBuffer | None):
    """Requests back to back on the measure kernel, until both floors (DESIGN §4).

    The kernel's own per-request samples are not kept: each request's record holds its times, step by step.
    """
    memory = PeakMemoryTracker(lm.device)
    memory.start()
    records: list[RequestRecord] = []
    duration_ns = int(settings.min_duration_s * 1e9)
    progress_start = perf_counter_ns()  # the loop's span starts a few µs later: close enough for a progress bar

    def serve_next() -> None:
        index = len(records)
        observer = _StepObserver(memory, samples, report, settings, progress_start, duration_ns, index)
        records.append(serve_request(decoder, _prompts(lm, settings, index), new_tokens=settings.new_tokens,
                                     index=index, cancel=cancel, use_cache=settings.use_cache, on_step=observer))

    span = time_iterations(serve_next, None, SampleBuffer(), cancel, clock=perf_counter_ns,
                           iterations=settings.requests, min_duration_ns=duration_ns)
    return records, span.start_ns, span.end_ns, memory.stop()


class _StepObserver:
    """Called after each timed step, outside the clock: memory sample, live samples, progress."""

    def __init__(self, memory: PeakMemoryTracker, samples: SampleBuffer | None, report: Progress,
                 settings: GenerationSettings, loop_start: int, duration_ns: int, index: int):
        self.memory, self.samples, self.report = memory, samples, report
        self.settings, self.loop_start, self.duration_ns, self.index = settings, loop_start, duration_ns, index
        self.next_report = 0

    def __call__(self, start_ns: int, latency_ns: int, done_in_request: float) -> None:
        self.memory.sample()
        if self.samples is not None:
            self.samples.append(start_ns, latency_ns)
        now = perf_counter_ns()
        if now < self.next_report and done_in_request < 1.0:
            return
        self.next_report = now + PROGRESS_INTERVAL_NS
        by_count = (self.index + done_in_request) / self.settings.requests
        by_time = (now - self.loop_start) / self.duration_ns if self.duration_ns else 0.0
        self.report(0.1 + 0.9 * min(1.0, max(by_count, by_time)), f"request {self.index + 1}")


def _prompts(lm: CausalLM, settings: GenerationSettings, stream: int) -> np.ndarray:
    return random_prompts(settings.batch_size, settings.prompt_tokens, lm.vocab_size, settings.seed, request=stream)


StepCallback = Callable[[int, int, float], None]


def serve_request(decoder: Decoder, prompts: np.ndarray, *, new_tokens: int, index: int, cancel: threading.Event,
                  use_cache: bool = True, on_step: StepCallback | None = None,
                  start_cache: Callable[[], object] | None = None) -> RequestRecord:
    """Prefill `prompts` (batch × length), then decode `new_tokens - 1` steps, one token per row each.

    Without the KV cache every step runs the model over the whole sequence so far and keeps nothing.
    `start_cache` makes the cache the prompt extends (a shared prefix's); it is called on the clock.
    The steps are not the measure kernel's loop: each step's input is the previous step's tokens, and `on_step`
    runs between steps (memory, live samples, progress), for which the kernel has no per-iteration slot.
    """
    on_step = on_step or (lambda start, latency, done: None)
    start = perf_counter_ns()
    cache = (start_cache() if start_cache else decoder.new_cache()) if use_cache else None
    ids = decoder.tensor(prompts)
    tokens = decoder.step(ids, cache)
    decoder.synchronize()
    first = perf_counter_ns()
    on_step(start, first - start, 1 / new_tokens)
    outputs = [[t] for t in tokens]
    times, starts, latencies = [first], [], []
    sequence = ids
    complete = True
    for produced in range(1, new_tokens):
        if cancel.is_set():
            complete = False
            break
        begin = perf_counter_ns()
        column = decoder.tensor([[t] for t in tokens])
        if use_cache:
            tokens = decoder.step(column, cache)
        else:
            sequence = torch.cat([sequence, column], dim=1)
            tokens = decoder.step(sequence, None)
        decoder.synchronize()
        end = perf_counter_ns()
        for row, token in zip(outputs, tokens):
            row.append(token)
        times.append(end)
        starts.append(begin)
        latencies.append(end - begin)
        on_step(begin, end - begin, (produced + 1) / new_tokens)
    return RequestRecord(
        index=index,
        batch_size=len(outputs),
        prompt_tokens=int(prompts.shape[1]),
        start_ns=start,
        prefill_start_ns=start,
        token_times_ns=np.asarray(times, dtype=np.int64),
        decode_starts_ns=np.asarray(starts, dtype=np.int64),
        decode_latencies_ns=np.asarray(latencies, dtype=np.int64),
        output_ids=tuple(tuple(row) for row in outputs),
        complete=complete,
    )


@dataclass(frozen=True)
class KvCacheComparison:
    with_cache: GenerationResult
    without_cache: GenerationResult
    decode_speedup: float | None  # decode tokens/s with the cache ÷ without
    outputs_identical: bool | None  # greedy outputs equal request by request; None when sampling

    @property
    def status(self) -> str:
        both = (self.with_cache.status, self.without_cache.status)
        return "completed" if both == ("completed", "completed") else "cancelled"

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request of both runs, in the order they were served."""
        return [*self.with_cache.requests, *self.without_cache.requests]

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "decode_speedup": self.decode_speedup,
            "outputs_identical": self.outputs_identical,
            "with_cache": self.with_cache.to_dict(),
            "without_cache": self.without_cache.to_dict(),
        }


def compare_kv_cache(lm: CausalLM, settings: GenerationSettings, *, threads: int | None = None,
                     cancel: threading.Event | None = None, progress: Progress | None = None) -> KvCacheComparison:
    """The same requests with the KV cache on, then off; the decode speedup is measured, side by side."""
    report = progress or _no_progress
    on = run_generation_benchmark(lm, replace(settings, use_cache=True), threads=threads, cancel=cancel,
                                  progress=lambda f, m: report(0.5 * f, f"KV cache on: {m}"))
    off = run_generation_benchmark(lm, replace(settings, use_cache=False), threads=threads, cancel=cancel,
                                   progress=lambda f, m: report(0.5 + 0.5 * f, f"KV cache off: {m}"))
    fast, slow = on.summary.decode_tokens_per_s, off.summary.decode_tokens_per_s
    identical = None
    if not settings.do_sample:
        pairs = list(zip(on.requests, off.requests))
        identical = bool(pairs) and all(a.output_ids == b.output_ids for a, b in pairs if a.complete and b.complete)
    return KvCacheComparison(on, off, fast / slow if fast and slow else None, identical)
