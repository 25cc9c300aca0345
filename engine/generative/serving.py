"""Serving benchmark, MLPerf server style: Poisson arrivals at a target rate through the batching scheduler.

Reports throughput (generated tokens/s), TTFT p50/p99 (from each request's
scheduled arrival, queueing included), TPOT p99 (per request, as the requester
sees it) and the batch sizes the scheduler reached. `sweep_arrival_rates` gives
the curve against the rate and where it saturates; `rate_per_s=None` (every
request at once) measures capacity, and `max_batch=1` the sequential baseline.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from time import perf_counter_ns

import numpy as np

from core.latency_stats import LatencyStats
from core.progress import Progress
from engine.device.environment import fingerprint
from engine.generative.decoding import Decoder
from engine.generative.loading import CausalLM, check_fits, torch_threads
from engine.generative.memory import PeakMemory, PeakMemoryTracker
from engine.generative.prompts import random_prompts
from engine.generative.results import RequestRecord, TokenSamples, token_samples
from engine.generative.scheduler import StepLog, serve_stream
from engine.generative.settings import RateSweepSettings, ServingSettings

WARMUP_STREAM = 1 << 40


def poisson_arrivals(rate_per_s: float | None, *, seed: int, count: int | None = None,
                     duration_s: float | None = None) -> np.ndarray:
    """Arrival offsets in seconds from the stream's start, ascending.

    Exponential gaps at `rate_per_s` (a Poisson process), seeded; `count` arrivals, or all those before
    `duration_s` (at least one). Without a rate every request arrives at 0.
    """
    if rate_per_s is None:
        return np.zeros(count or 1)
    rng = np.random.default_rng([seed, 7])
    if duration_s is None:
        return np.cumsum(rng.exponential(1.0 / rate_per_s, size=count or 1))
    offsets: list[float] = []
    now = rng.exponential(1.0 / rate_per_s)
    while now < duration_s or not offsets:
        offsets.append(now)
        now += rng.exponential(1.0 / rate_per_s)
    return np.asarray(offsets)


@dataclass(frozen=True)
class ServingResult:
    status: str
    settings: dict
    model: dict
    arrivals_s: np.ndarray  # scheduled offsets from the stream's start
    requests: list[RequestRecord]  # start_ns is the scheduled arrival
    steps: StepLog
    stream_start_ns: int
    stream_end_ns: int
    throughput_tokens_per_s: float | None
    ttft: LatencyStats
    tpot: LatencyStats  # one sample per request: its mean time per output token after the first
    queue: LatencyStats  # scheduled arrival to start of prefill
    inter_token: LatencyStats  # every gap between two tokens of a request
    memory: PeakMemory
    environment: dict

    def token_samples(self) -> TokenSamples:
        """Per request, its prefill and each batched decode step it took part in (shared steps repeat)."""
        return token_samples(self.requests)

    @property
    def mean_batch(self) -> float | None:
        return float(self.steps.batch_sizes.mean()) if self.steps.batch_sizes.size else None

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "settings": self.settings,
            "model": self.model,
            "requests": len(self.requests),
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "ttft_ms": self.ttft.latency_dict(),
            "tpot_ms": self.tpot.latency_dict(),
            "queue_ms": self.queue.latency_dict(),
            "inter_token_ms": self.inter_token.latency_dict(),
            "unreliable_percentiles": {"ttft": list(self.ttft.unreliable_percentiles),
                                       "tpot": list(self.tpot.unreliable_percentiles)},
            "decode_steps": int(self.steps.batch_sizes.size),
            "mean_batch": self.mean_batch,
            "max_batch_reached": int(self.steps.batch_sizes.max()) if self.steps.batch_sizes.size else 0,
            "memory": self.memory.to_dict(),
            "environment": self.environment,
        }


def run_serving_benchmark(lm: CausalLM, settings: ServingSettings, *, threads: int | None = None,
                          cancel: threading.Event | None = None, progress: Progress | None = None,
                          warmup: bool = True) -> ServingResult:
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    check_fits(lm, settings.prompt_tokens + settings.new_tokens)
    arrivals = poisson_arrivals(settings.rate_per_s, seed=settings.seed, count=settings.requests,
                                duration_s=settings.duration_s)
    prompts = [random_prompts(1, settings.prompt_tokens, lm.vocab_size, settings.seed, request=k)[0]
               for k in range(arrivals.size)]
    with torch_threads(threads):
        description = lm.describe()
        decoder = Decoder(lm)
        if warmup:  # the batched shapes' first run is slow; a short uncounted burst at full batch pays for it
            report(0.0, "warm-up")
            _warm_up(decoder, lm, settings, min(settings.max_batch, arrivals.size), cancel)
        memory = PeakMemoryTracker(lm.device)
        memory.start()
        stream_start = perf_counter_ns()
        schedule = stream_start + np.round(arrivals * 1e9).astype(np.int64)
        records, steps = serve_stream(
            decoder, prompts, schedule, new_tokens=settings.new_tokens, max_batch=settings.max_batch, cancel=cancel,
            on_progress=lambda done, total: _served(memory, report, done, total))
        stream_end = perf_counter_ns()
        peak = memory.stop()
    status = "cancelled" if cancel.is_set() else "completed"
    report(1.0, status)
    return _result(status, settings, description, arrivals, records, steps, stream_start, stream_end, peak)


def _served(memory: PeakMemoryTracker, report: Progress, done: int, total: int) -> None:
    memory.sample()
    report(done / total, f"{done} of {total} requests served")


def _warm_up(decoder: Decoder, lm: CausalLM, settings: ServingSettings, count: int, cancel: threading.Event) -> None:
    prompts = [random_prompts(1, settings.prompt_tokens, lm.vocab_size, settings.seed, request=WARMUP_STREAM + k)[0]
               for k in range(count)]
    serve_stream(decoder, prompts, np.full(count, perf_counter_ns()), new_tokens=min(4, settings.new_tokens),
                 max_batch=settings.max_batch, cancel=cancel)


def _result(status: str, settings: ServingSettings, description: dict, arrivals: np.ndarray,
            records: list[RequestRecord], steps: StepLog, stream_start: int, stream_end: int,
            memory: PeakMemory) -> ServingResult:
    complete = [r for r in records if r.complete]
    wall = stream_end - stream_start
    last_token = max((int(r.token_times_ns[-1]) for r in complete), default=stream_start)
    generated = sum(r.new_tokens for r in complete)
    gaps = [np.diff(r.token_times_ns) for r in complete if r.new_tokens > 1]
    tpot = [r.tpot_ns for r in complete if r.tpot_ns is not None]
    return ServingResult(
        status=status,
        settings=settings.to_dict(),
        model=description,
        arrivals_s=arrivals,
        requests=records,
        steps=steps,
        stream_start_ns=stream_start,
        stream_end_ns=stream_end,
        throughput_tokens_per_s=generated / ((last_token - stream_start) / 1e9) if last_token > stream_start else None,
        ttft=LatencyStats.of(np.array([r.ttft_ns for r in complete], dtype=np.int64), wall_ns=wall),
        tpot=LatencyStats.of(np.round(np.array(tpot)).astype(np.int64), wall_ns=wall),
        queue=LatencyStats.of(np.array([r.queue_ns for r in complete], dtype=np.int64), wall_ns=wall),
        inter_token=LatencyStats.of(np.concatenate(gaps) if gaps else np.empty(0, dtype=np.int64), wall_ns=wall),
        memory=memory,
        environment=fingerprint(description),
    )


@dataclass(frozen=True)
class RateSweep:
    """Throughput and latency against the arrival rate, and the rate at which the server saturates.

    The all-at-once stream measures the server's capacity: requests/s when it is never idle. That is the
    saturation point: below it (load = rate ÷ capacity under 1) the server keeps up and throughput follows
    the arrival rate; above it requests arrive faster than they are served, so the queue and TTFT grow
    with the length of the stream while throughput stays at capacity.
    """

    settings: RateSweepSettings
    points: tuple[ServingResult, ...]  # one per rate of settings.rates_per_s, in order; fewer if cancelled
    all_at_once: ServingResult | None  # None when cancelled before it ran

    @property
    def status(self) -> str:
        streams = (*self.points, self.all_at_once)
        complete = len(self.points) == len(self.settings.rates_per_s) and all(
            stream is not None and stream.status == "completed" for stream in streams)
        return "completed" if complete else "cancelled"

    @property
    def rated_points(self) -> list[tuple[float, ServingResult]]:
        return list(zip(self.settings.rates_per_s, self.points))

    @property
    def capacity_tokens_per_s(self) -> float | None:
        return self.all_at_once.throughput_tokens_per_s if self.all_at_once is not None else None

    @property
    def saturation_rate_per_s(self) -> float | None:
        """The capacity in requests/s: every request produces the same number of tokens."""
        capacity = self.capacity_tokens_per_s
        return capacity / self.settings.stream.new_tokens if capacity is not None else None

    def load(self, rate_per_s: float) -> float | None:
        saturation = self.saturation_rate_per_s
        return rate_per_s / saturation if saturation else None

    @property
    def rates_beyond_saturation(self) -> list[float]:
        return [rate for rate, _ in self.rated_points if (self.load(rate) or 0.0) >= 1.0]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request of every stream, in the order they were served."""
        streams = [*self.points, *([self.all_at_once] if self.all_at_once is not None else [])]
        return [record for stream in streams for record in stream.requests]

    def to_dict(self) -> dict:
        first = self.points[0] if self.points else self.all_at_once
        return {
            "status": self.status,
            "settings": self.settings.to_dict(),
            "model": first.model if first is not None else None,
            "capacity_tokens_per_s": self.capacity_tokens_per_s,
            "saturation_rate_per_s": self.saturation_rate_per_s,
            "rates_beyond_saturation": self.rates_beyond_saturation,
            "points": [{"rate_per_s": rate, "load": self.load(rate), **_stream_dict(point)}
                       for rate, point in self.rated_points],
            "all_at_once": _stream_dict(self.all_at_once) if self.all_at_once is not None else None,
            "environment": first.environment if first is not None else None,
        }


def _stream_dict(result: ServingResult) -> dict:
    return {key: value for key, value in result.to_dict().items() if key not in ("model", "environment", "settings")}


def sweep_arrival_rates(lm: CausalLM, settings: RateSweepSettings, *, threads: int | None = None,
                        cancel: threading.Event | None = None, progress: Progress | None = None) -> RateSweep:
    """One serving stream per rate, then all at once (same seed and prompts): throughput and latency vs rate."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    rates: list[float | None] = [*settings.rates_per_s, None]
    results: list[ServingResult] = []
    for i, rate in enumerate(rates):
        if cancel.is_set():
            break
        label = "all at once" if rate is None else f"{rate:g} requests/s"

        def scaled(fraction: float, message: str, i: int = i, label: str = label) -> None:
            report((i + fraction) / len(rates), f"{label}: {message}")

        results.append(run_serving_benchmark(lm, settings.stream_at(rate), threads=threads, cancel=cancel,
                                             progress=scaled))
    all_at_once = results.pop() if len(results) == len(rates) else None
    return RateSweep(settings, tuple(results), all_at_once)
