"""Stop measuring a configuration once its median is pinned down: the 95% CI of the median within ±2%.

A fixed iteration count wastes time on stable configurations and is too short for noisy ones. The interval
is the distribution-free order-statistic interval of the median (no normality assumed, no resampling), so
checking it as samples arrive costs two partial sorts. A time cap ends a point that never settles, and the
result says which rule stopped it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from statistics import NormalDist
from time import perf_counter_ns

import numpy as np

from core.progress import Progress
from engine.errors import BackendError, InputError, first_line
from engine.measure.prepared_session import PreparedSession
from engine.measure.samples import SampleBuffer
from engine.measure.timed_loop import time_iterations, warm_up

MIN_SAMPLES_FOR_INTERVAL = 30  # below this the normal approximation of the order-statistic ranks is poor


@dataclass(frozen=True)
class StoppingRule:
    """When a point stops: after the minimums, once the CI is tight enough (if asked), or at the time cap."""

    warmup: int = 10
    min_iterations: int = 50
    min_duration_s: float = 0.5
    ci_half_width: float | None = 0.02  # relative; None measures a fixed length (the minimums) instead
    confidence: float = 0.95
    max_duration_s: float = 10.0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_iterations < 1:
            raise InputError("the warm-up must be 0 or more and the minimum iterations at least 1")
        if not 0 <= self.min_duration_s <= self.max_duration_s or not math.isfinite(self.max_duration_s):
            raise InputError(f"need 0 <= minimum duration ({self.min_duration_s:g} s) <= time cap "
                             f"({self.max_duration_s:g} s)")
        if self.ci_half_width is not None and not 0 < self.ci_half_width < 1:
            raise InputError(f"the confidence interval half-width must be a fraction in (0, 1), "
                             f"got {self.ci_half_width}")
        if not 0.5 < self.confidence < 1:
            raise InputError(f"the confidence level must be between 0.5 and 1, got {self.confidence}")

    @property
    def adaptive(self) -> bool:
        return self.ci_half_width is not None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> StoppingRule:
        return cls(**{key: values[key] for key in cls.__dataclass_fields__ if key in values})


def median_interval(latencies_ns: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float] | None:
    """(median, low, high) in ns, the interval covering the true median with `confidence`; None if too few."""
    count = int(latencies_ns.size)
    if count < MIN_SAMPLES_FOR_INTERVAL:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    spread = z * math.sqrt(count) / 2
    low_rank = max(int(math.floor(count / 2 - spread)) - 1, 0)  # ranks are 1-based in the textbook formula
    high_rank = min(int(math.ceil(count / 2 + spread)), count - 1)
    middle = count // 2
    ordered = np.partition(latencies_ns, sorted({low_rank, middle, high_rank, (count - 1) // 2}))
    median = (float(ordered[middle]) + float(ordered[(count - 1) // 2])) / 2
    return median, float(ordered[low_rank]), float(ordered[high_rank])


@dataclass(frozen=True)
class AdaptiveRun:
    status: str  # "completed" or "cancelled"
    stop_reason: str
    converged: bool
    starts_ns: np.ndarray
    latencies_ns: np.ndarray
    loop_start_ns: int
    loop_end_ns: int
    interval_ns: tuple[float, float, float] | None  # (median, low, high) at the stop


def measure_until_stable(prepared: PreparedSession, rule: StoppingRule, *, cancel: threading.Event | None = None,
                         progress: Progress | None = None, samples: SampleBuffer | None = None) -> AdaptiveRun:
    """Warm-up, then timed iterations until `rule` says stop; every raw sample is kept in `samples`."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    samples = samples if samples is not None else SampleBuffer()
    first = len(samples)
    stopping = _UntilStable(rule, samples, first)
    cap_ns = stopping.cap_ns

    def loop_progress(count: int, elapsed_ns: int) -> None:
        report(min(elapsed_ns / cap_ns, 0.99), f"{count} iterations")

    try:
        warm_up(prepared.call, prepared.sync, rule.warmup, cancel, clock=perf_counter_ns)
        span = time_iterations(prepared.call, prepared.sync, samples, cancel, clock=perf_counter_ns,
                               stop=stopping, progress=loop_progress)
    except prepared.session.run_errors as error:
        raise BackendError(f"the model failed during the measurement: {first_line(error)}") from error
    starts, latencies = samples.snapshot(since=first)
    interval = stopping.interval
    if interval is None and latencies.size:
        interval = median_interval(latencies, rule.confidence)
    status = "cancelled" if cancel.is_set() else "completed"
    return AdaptiveRun(status, stopping.reason, stopping.converged, starts, latencies, span.start_ns, span.end_ns,
                       interval)


class _UntilStable:
    """The rule asked after every iteration; it keeps why it stopped and the last median interval it computed."""

    def __init__(self, rule: StoppingRule, samples: SampleBuffer, first: int):
        self.rule, self.samples, self.first = rule, samples, first
        self.min_ns, self.cap_ns = int(rule.min_duration_s * 1e9), int(rule.max_duration_s * 1e9)
        self.next_check = rule.min_iterations
        self.reason, self.converged = "stopped by the user", False
        self.interval: tuple[float, float, float] | None = None

    def __call__(self, count: int, elapsed_ns: int, _latency_ns: int) -> bool:
        rule = self.rule
        if elapsed_ns >= self.cap_ns:
            self.interval = self._median_interval()
            self.converged = rule.adaptive and self.interval is not None and _tight(self.interval, rule.ci_half_width)
            self.reason = _capped_reason(rule, self.interval)
            return True
        if count < self.next_check or elapsed_ns < self.min_ns:
            return False
        if not rule.adaptive:
            self.reason = "reached the minimum iterations and duration"
            return True
        self.interval = self._median_interval()
        if self.interval is not None and _tight(self.interval, rule.ci_half_width):
            self.reason = f"median known within ±{rule.ci_half_width:.0%} at {rule.confidence:.0%}"
            self.converged = True
            return True
        self.next_check = count + max(16, count // 10)  # re-check every 10% more samples
        return False

    def _median_interval(self) -> tuple[float, float, float] | None:
        return median_interval(self.samples.view(self.first)[1], self.rule.confidence)


def _tight(interval: tuple[float, float, float], half_width: float) -> bool:
    median, low, high = interval
    return low >= median * (1 - half_width) and high <= median * (1 + half_width)


def _capped_reason(rule: StoppingRule, interval: tuple[float, float, float] | None) -> str:
    if not rule.adaptive or interval is None:
        return f"reached the time cap of {rule.max_duration_s:g} s"
    median, low, high = interval
    width = max(median - low, high - median) / median if median else float("inf")
    return f"reached the time cap of {rule.max_duration_s:g} s with the median known within ±{width:.1%}"
