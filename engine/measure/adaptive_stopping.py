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
from engine.measure.runner import warm_up
from engine.measure.samples import SampleBuffer

MIN_SAMPLES_FOR_INTERVAL = 30  # below this the normal approximation of the order-statistic ranks is poor
PROGRESS_INTERVAL_NS = 100_000_000


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
    call, sync, append = prepared.call, prepared.sync, samples.append
    min_ns, cap_ns = int(rule.min_duration_s * 1e9), int(rule.max_duration_s * 1e9)
    try:
        warm_up(call, sync, rule.warmup, cancel)
        loop_start = end = perf_counter_ns()
        next_check, next_report, count = rule.min_iterations, loop_start + PROGRESS_INTERVAL_NS, 0
        stop_reason, converged, interval = "stopped by the user", False, None
        while not cancel.is_set():
            begin = perf_counter_ns()
            call()
            if sync is not None:
                sync()
            end = perf_counter_ns()
            append(begin, end - begin)
            count += 1
            elapsed = end - loop_start
            if elapsed >= cap_ns:
                interval = median_interval(samples.snapshot(since=first)[1], rule.confidence)
                converged = rule.adaptive and interval is not None and _tight(interval, rule.ci_half_width)
                stop_reason = _capped_reason(rule, interval)
                break
            if count >= next_check and elapsed >= min_ns:
                if not rule.adaptive:
                    stop_reason = "reached the minimum iterations and duration"
                    break
                interval = median_interval(samples.snapshot(since=first)[1], rule.confidence)
                if interval is not None and _tight(interval, rule.ci_half_width):
                    stop_reason = f"median known within ±{rule.ci_half_width:.0%} at {rule.confidence:.0%}"
                    converged = True
                    break
                next_check = count + max(16, count // 10)  # re-check every 10% more samples
            if end >= next_report:
                next_report = end + PROGRESS_INTERVAL_NS
                report(min(elapsed / cap_ns, 0.99), f"{count} iterations")
    except prepared.session.run_errors as error:
        raise BackendError(f"the model failed during the measurement: {first_line(error)}") from error
    starts, latencies = samples.snapshot(since=first)
    if interval is None and latencies.size:
        interval = median_interval(latencies, rule.confidence)
    status = "cancelled" if cancel.is_set() else "completed"
    return AdaptiveRun(status, stop_reason, converged, starts, latencies, loop_start, end, interval)


def _tight(interval: tuple[float, float, float], half_width: float) -> bool:
    median, low, high = interval
    return low >= median * (1 - half_width) and high <= median * (1 + half_width)


def _capped_reason(rule: StoppingRule, interval: tuple[float, float, float] | None) -> str:
    if not rule.adaptive or interval is None:
        return f"reached the time cap of {rule.max_duration_s:g} s"
    median, low, high = interval
    width = max(median - low, high - median) / median if median else float("inf")
    return f"reached the time cap of {rule.max_duration_s:g} s with the median known within ±{width:.1%}"
