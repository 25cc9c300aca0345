"""MLPerf LoadGen-style load scenarios on a prepared session: single-stream, offline and server.

- single-stream: one query at a time, the next issued when the last completes; the headline is p90 latency.
- offline: every item is available at once and streams through the session as back-to-back batches; the
  headline is throughput. The item count is sized from the warm-up so the stream outlasts the minimum duration.
- server: queries arrive on a seeded Poisson schedule at a target rate and are served first come, first
  served. Latency counts from the *scheduled* arrival, not from when the session got to the query, so time a
  query spent queued behind a slow one is charged to it (coordinated omission corrected). The headline is p99
  and whether it held the latency bound.

Like LoadGen, a result is VALID only when it ran at least the minimum duration and the minimum number of
queries (and, for server, kept p99 under the bound); otherwise it is INVALID with every reason listed. Our
defaults are far shorter than LoadGen's 600 s so a laptop run finishes quickly; say so when quoting results.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from time import perf_counter_ns

import numpy as np

from core.latency_stats import LatencyStats, min_samples_for
from core.progress import Progress
from engine.errors import BackendError, InputError, first_line
from engine.measure.prepared_session import PreparedSession
from engine.measure.runner import timed_loop
from engine.measure.samples import SampleBuffer
from engine.measure.timed_loop import (
    SPIN_BELOW_NS,
    Schedule,
    time_iterations,
    wait_until,
    warm_up,
)

SCENARIOS = ("single-stream", "offline", "server")
HEADLINE_PERCENTILE = {"single-stream": "p90", "offline": None, "server": "p99"}
MAX_SCHEDULED_QUERIES = 20_000_000  # 320 MB of schedule and samples
OFFLINE_MARGIN = 1.25  # LoadGen adds 10% to a user-tuned expected rate; ours comes from a short warm-up


@dataclass(frozen=True)
class ScenarioSettings:
    scenario: str = "single-stream"
    min_duration_s: float = 1.0
    min_queries: int = 100  # offline: the minimum number of items
    warmup: int = 10
    target_qps: float | None = None  # server only
    latency_bound_ms: float | None = None  # server only
    seed: int = 0  # server arrival schedule

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise InputError(f"unknown scenario '{self.scenario}'; choose one of {', '.join(SCENARIOS)}")
        if not (self.min_duration_s >= 0 and math.isfinite(self.min_duration_s)):
            raise InputError(f"the minimum duration must be 0 or more seconds, got {self.min_duration_s}")
        if self.min_queries < 1 or self.warmup < 0:
            raise InputError("the minimum query count must be at least 1 and the warm-up 0 or more")
        if self.scenario == "server":
            if self.target_qps is None or not (self.target_qps > 0 and math.isfinite(self.target_qps)):
                raise InputError("the server scenario needs a target rate above 0 queries per second (--rate)")
            if self.latency_bound_ms is None or not self.latency_bound_ms > 0:
                raise InputError("the server scenario needs a latency bound above 0 ms (--latency-bound-ms)")

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "min_duration_s": self.min_duration_s, "min_queries": self.min_queries,
                "warmup": self.warmup, "target_qps": self.target_qps, "latency_bound_ms": self.latency_bound_ms,
                "seed": self.seed}


@dataclass(frozen=True)
class Validity:
    valid: bool
    reasons: tuple[str, ...]  # why it is INVALID; empty when VALID

    @property
    def label(self) -> str:
        return "VALID" if self.valid else "INVALID"

    def to_dict(self) -> dict:
        return {"result": self.label, "reasons": list(self.reasons)}


def judge_validity(settings: ScenarioSettings, *, duration_ns: int, queries: int, items: int, cancelled: bool,
                   p99_ms: float | None = None, stopped_early: str | None = None) -> Validity:
    """LoadGen's rules: minimum duration and count, and for server a p99 within the bound from enough queries."""
    reasons = []
    if cancelled:
        reasons.append("stopped by the user before the run was complete")
    if stopped_early:
        reasons.append(stopped_early)
    duration_s = duration_ns / 1e9
    if duration_s < settings.min_duration_s:
        reasons.append(f"ran {duration_s:.3f} s, under the minimum duration of {settings.min_duration_s:g} s")
    counted, noun = (items, "items") if settings.scenario == "offline" else (queries, "queries")
    if counted < settings.min_queries:
        reasons.append(f"{counted} {noun}, under the minimum of {settings.min_queries}")
    percentile = HEADLINE_PERCENTILE[settings.scenario]
    if percentile is not None and queries < min_samples_for(float(percentile[1:])):
        reasons.append(f"{percentile} from {queries} queries means little (it needs at least "
                       f"{min_samples_for(float(percentile[1:]))})")
    if settings.scenario == "server" and p99_ms is not None and p99_ms > settings.latency_bound_ms:
        reasons.append(f"p99 latency {p99_ms:.3f} ms exceeds the bound of {settings.latency_bound_ms:g} ms")
    return Validity(not reasons, tuple(reasons))


@dataclass(frozen=True)
class ScenarioResult:
    settings: ScenarioSettings
    status: str  # "completed" or "cancelled"
    validity: Validity
    batch_size: int
    queries: int
    items: int
    duration_ns: int  # first issue (or scheduled arrival) to the last completion
    latency: LatencyStats  # the scenario's latency: per query; server: from the scheduled arrival
    starts_ns: np.ndarray  # issue time, or scheduled arrival for server
    latencies_ns: np.ndarray
    service_ns: np.ndarray  # time the session actually spent on each query
    scheduled_qps: float | None = None  # server: the rate of the schedule actually generated
    stopped_early: str | None = None
    session: dict = field(default_factory=dict)
    start_ns: int = 0  # perf_counter_ns when the timed part began: telemetry covers [start_ns, start_ns + duration_ns]

    @property
    def throughput_per_s(self) -> float | None:
        return self.items / (self.duration_ns / 1e9) if self.duration_ns > 0 else None

    @property
    def queueing_ns(self) -> np.ndarray:
        """Time each query waited between its issue (or arrival) and the session starting it."""
        return self.latencies_ns - self.service_ns

    @property
    def bound_held(self) -> bool | None:
        if self.settings.scenario != "server" or self.latency.count == 0:
            return None
        return self.stopped_early is None and self.latency.percentiles_ms["p99"] <= self.settings.latency_bound_ms

    def headline(self) -> dict:
        """The figure LoadGen reports for this scenario."""
        if self.settings.scenario == "single-stream":
            return {"p90_ms": self.latency.percentiles_ms["p90"]}
        if self.settings.scenario == "offline":
            return {"items_per_s": self.throughput_per_s}
        return {"p99_ms": self.latency.percentiles_ms["p99"], "latency_bound_ms": self.settings.latency_bound_ms,
                "bound_held": self.bound_held, "target_qps": self.settings.target_qps,
                "scheduled_qps": self.scheduled_qps,
                "completed_qps": self.queries / (self.duration_ns / 1e9) if self.duration_ns > 0 else None}

    def to_dict(self) -> dict:
        service = LatencyStats.of(self.service_ns, wall_ns=self.duration_ns, items=self.service_ns.size * self.batch_size)
        queueing = self.queueing_ns
        return {
            "scenario": self.settings.scenario, "status": self.status, **self.validity.to_dict(),
            "headline": self.headline(), "settings": self.settings.to_dict(), "batch_size": self.batch_size,
            "queries": self.queries, "items": self.items, "duration_s": self.duration_ns / 1e9,
            "throughput_per_s": self.throughput_per_s, "latency_ms": self.latency.latency_dict(),
            "unreliable_percentiles": list(self.latency.unreliable_percentiles),
            "service_ms": service.latency_dict(),
            "queueing_ms": {"mean": float(queueing.mean() / 1e6) if queueing.size else None,
                            "max": float(queueing.max() / 1e6) if queueing.size else None},
            "stopped_early": self.stopped_early, "session": self.session,
        }


def poisson_arrivals(rate_qps: float, *, min_queries: int, min_duration_s: float, seed: int) -> np.ndarray:
    """Arrival offsets (ns from the start) of a seeded Poisson process: enough for both minimums.

    Gaps are exponential with mean 1/rate. The same seed gives the same gaps scaled by 1/rate, so trials at
    different rates (the max-rate search) see the same pattern of bursts.
    """
    expected = max(min_queries, math.ceil(rate_qps * min_duration_s))
    if expected > MAX_SCHEDULED_QUERIES:
        raise InputError(f"{rate_qps:g} queries per second for {min_duration_s:g} s is {expected:,} queries, more than "
                         f"the {MAX_SCHEDULED_QUERIES:,} one run holds; lower the rate or the duration")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, expected)
    offsets = np.cumsum(gaps) / rate_qps
    while offsets[-1] < min_duration_s:  # the schedule came out short: extend it with further draws
        more = np.cumsum(rng.exponential(1.0, max(16, expected // 10))) / rate_qps + offsets[-1]
        offsets = np.concatenate([offsets, more])
    return np.round(offsets * 1e9).astype(np.int64)


def run_scenario(prepared: PreparedSession, batch_size: int, settings: ScenarioSettings, *,
                 cancel: threading.Event | None = None, progress: Progress | None = None,
                 samples: SampleBuffer | None = None, abort_when_bound_broken: bool = False) -> ScenarioResult:
    """Warms up, then runs the scenario; `samples` receives (issue or arrival, latency) as they happen.

    `abort_when_bound_broken` (server) stops as soon as enough queries missed the bound that p99 is over it
    whatever the rest do; the max-rate search uses it so hopeless rates cost little time.
    """
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    samples = samples if samples is not None else SampleBuffer()
    try:
        report(0.02, f"warm-up ({settings.warmup} iterations)")
        per_call_ns = warm_up(prepared.call, prepared.sync, settings.warmup, cancel, clock=perf_counter_ns)
        if settings.scenario == "single-stream":
            loop = _single_stream(prepared, settings, samples, cancel, report)
        elif settings.scenario == "offline":
            loop = _offline(prepared, batch_size, settings, per_call_ns, samples, cancel, report)
        else:
            loop = _server(prepared, settings, samples, cancel, report, abort_when_bound_broken)
    except prepared.session.run_errors as error:
        raise BackendError(f"the model failed during the {settings.scenario} scenario: {first_line(error)}") from error
    starts, latencies, service, start_ns, duration_ns, stopped_early, scheduled_qps = loop
    queries = int(latencies.size)
    items = queries * batch_size
    stats = LatencyStats.of(latencies, wall_ns=duration_ns, items=latencies.size * batch_size)
    validity = judge_validity(settings, duration_ns=duration_ns, queries=queries, items=items,
                              cancelled=cancel.is_set(), p99_ms=stats.percentiles_ms["p99"],
                              stopped_early=stopped_early)
    status = "cancelled" if cancel.is_set() else "completed"
    report(1.0, f"{settings.scenario}: {validity.label}")
    return ScenarioResult(settings, status, validity, batch_size, queries, items, duration_ns, stats, starts,
                          latencies, service, scheduled_qps, stopped_early, prepared.description, start_ns)


def _single_stream(prepared: PreparedSession, settings: ScenarioSettings, samples: SampleBuffer,
                   cancel: threading.Event, report: Progress):
    """One query at a time, each issued when the previous one finishes: the runner's own timed loop."""
    first = len(samples)
    loop_start, end = timed_loop(prepared.call, prepared.sync, samples, settings.min_queries, settings.min_duration_s,
                                 cancel, lambda fraction, message: report(fraction, f"single-stream: {message}"))
    starts, latencies = samples.snapshot(since=first)
    return starts, latencies, latencies.copy(), loop_start, end - loop_start, None, None


def _offline(prepared: PreparedSession, batch_size: int, settings: ScenarioSettings, per_call_ns: int | None,
             samples: SampleBuffer, cancel: threading.Event, report: Progress):
    """All items issued at once at t0; each batch's latency is its own service time, throughput the headline."""
    items = settings.min_queries
    if per_call_ns:
        items = max(items, math.ceil(settings.min_duration_s * 1e9 / per_call_ns * OFFLINE_MARGIN) * batch_size)
    calls = min(math.ceil(items / batch_size), MAX_SCHEDULED_QUERIES)
    first = len(samples)
    samples.reserve(first + calls)
    report(0.05, f"offline: {calls * batch_size} items in {calls} batches of {batch_size}")

    def progress(count: int, _elapsed_ns: int) -> None:
        report(_fraction(count / calls, 1.0), f"offline: {count} of {calls} batches")

    span = time_iterations(prepared.call, prepared.sync, samples, cancel, clock=perf_counter_ns, iterations=calls,
                           progress=progress)
    starts, latencies = samples.snapshot(since=first)
    return starts, latencies, latencies.copy(), span.start_ns, span.duration_ns, None, None


def _server(prepared: PreparedSession, settings: ScenarioSettings, samples: SampleBuffer, cancel: threading.Event,
            report: Progress, abort_when_bound_broken: bool):
    offsets = poisson_arrivals(settings.target_qps, min_queries=settings.min_queries,
                               min_duration_s=settings.min_duration_s, seed=settings.seed)
    scheduled_qps = float(offsets.size / (offsets[-1] / 1e9))
    total = offsets.size
    bound_ns = int(settings.latency_bound_ms * 1e6)
    # Once this many queries missed the bound, p99 (linear interpolation) is over it whatever the rest do.
    fatal_misses = total - math.floor(0.99 * (total - 1))
    first = len(samples)
    samples.reserve(first + total)
    report(0.05, f"server: {total} queries at {settings.target_qps:g} per second")
    origin = perf_counter_ns() + SPIN_BELOW_NS  # the first arrival must not be late already
    arrivals = (offsets + origin).tolist()
    misses = 0
    stopped_early = None

    def arrive(index: int) -> int:
        arrival = arrivals[index]
        if perf_counter_ns() < arrival:
            wait_until(arrival, cancel)
        return arrival

    def bound_broken(count: int, _elapsed_ns: int, latency_ns: int) -> bool:
        nonlocal misses, stopped_early
        if latency_ns > bound_ns:
            misses += 1
            if abort_when_bound_broken and misses >= fatal_misses:
                stopped_early = (f"stopped after {count} of {total} queries: {misses} already missed the "
                                 f"{settings.latency_bound_ms:g} ms bound, so p99 cannot hold it")
                return True
        return False

    def progress(count: int, _elapsed_ns: int) -> None:
        report(_fraction(count / total, 1.0), f"server: {count} of {total} queries")

    schedule = Schedule(origin, arrive, np.empty(total, dtype=np.int64))
    span = time_iterations(prepared.call, prepared.sync, samples, cancel, clock=perf_counter_ns, iterations=total,
                           stop=bound_broken, progress=progress, schedule=schedule)
    starts, latencies = samples.snapshot(since=first)
    return (starts, latencies, schedule.service_ns[:span.iterations].copy(), origin, span.duration_ns, stopped_early,
            scheduled_qps)


def _fraction(by_count: float, by_time: float) -> float:
    return 0.05 + 0.9 * min(by_count, by_time, 1.0)
