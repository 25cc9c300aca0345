"""The benchmark runner: cold start apart from warm steady state, every raw sample kept.

Rules (DESIGN.md §4): warm-up iterations are never counted; the timed loop runs
until both the minimum iteration count and the minimum duration are reached, or
until cancel, which takes effect within one iteration; device work is
synchronized before the clock is read.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from time import perf_counter_ns

import numpy as np

from core.latency_stats import LatencyStats
from core.progress import Progress
from engine.backends.base import Backend, BackendOptions
from engine.device.discovery import DeviceRunner
from engine.device.environment import fingerprint
from engine.errors import BackendError, InputError, first_line
from engine.measure.prepared_session import ColdStart, prepared_session
from engine.measure.samples import SampleBuffer
from engine.measure.timed_loop import time_iterations, warm_up
from engine.model.handle import ModelHandle
from engine.model.inputs import PreparedInputs

MAX_PREALLOCATED_SAMPLES = 2_000_000
_COLD_START_SHARE = 0.1  # of the progress bar


@dataclass(frozen=True)
class BenchmarkSettings:
    warmup: int = 10
    min_iterations: int = 100
    min_duration_s: float = 1.0

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise InputError(f"warm-up must be 0 or more iterations, got {self.warmup}")
        if self.min_iterations < 1:
            raise InputError(f"iterations must be at least 1, got {self.min_iterations}")
        if not (self.min_duration_s >= 0 and math.isfinite(self.min_duration_s)):
            raise InputError(f"duration must be 0 or more seconds, got {self.min_duration_s}")

    def to_dict(self) -> dict:
        return {"warmup": self.warmup, "min_iterations": self.min_iterations, "min_duration_s": self.min_duration_s}


@dataclass(frozen=True)
class BenchmarkResult:
    status: str  # "completed" or "cancelled"
    cold_start: ColdStart
    stats: LatencyStats
    starts_ns: np.ndarray  # perf_counter_ns at the start of each timed iteration
    latencies_ns: np.ndarray
    loop_start_ns: int
    loop_end_ns: int
    batch_size: int
    warmup_iterations: int
    session: dict
    environment: dict


def run_benchmark(
    backend: Backend,
    handle: ModelHandle,
    runner: DeviceRunner,
    options: BackendOptions,
    inputs: PreparedInputs,
    settings: BenchmarkSettings,
    *,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    samples: SampleBuffer | None = None,
) -> BenchmarkResult:
    """Load, prepare, run once cold, warm up, then time the loop.

    `samples` may be passed in so another thread can read it live (`snapshot`).
    """
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    samples = samples if samples is not None else SampleBuffer()

    with prepared_session(backend, handle, runner, options, inputs.feed, progress=report) as ready:
        try:
            report(_COLD_START_SHARE * 0.8, f"warm-up ({settings.warmup} iterations)")
            first_ns = int(ready.cold_start.first_inference_ms * 1e6)
            warm_ns = warm_up(ready.call, ready.sync, settings.warmup, cancel, clock=perf_counter_ns)
            per_iteration_ns = warm_ns or first_ns
            samples.reserve(_expected_samples(settings, per_iteration_ns))
            loop_start, loop_end = timed_loop(ready.call, ready.sync, samples, settings.min_iterations,
                                              settings.min_duration_s, cancel,
                                              lambda f, m: report(_COLD_START_SHARE + (1 - _COLD_START_SHARE) * f, m))
        except ready.session.run_errors as error:
            raise BackendError(f"the model failed during the benchmark: {first_line(error)}") from error
        description = ready.description

    starts, latencies = samples.snapshot()
    status = "cancelled" if cancel.is_set() else "completed"
    report(1.0, status)
    return BenchmarkResult(
        status=status,
        cold_start=ready.cold_start,
        stats=LatencyStats.of(latencies, wall_ns=loop_end - loop_start, items=latencies.size * inputs.batch_size),
        starts_ns=starts,
        latencies_ns=latencies,
        loop_start_ns=loop_start,
        loop_end_ns=loop_end,
        batch_size=inputs.batch_size,
        warmup_iterations=settings.warmup,
        session=description,
        environment=fingerprint(description),
    )


def timed_loop(call, sync, samples: SampleBuffer, min_iterations: int, min_duration_s: float,
               cancel: threading.Event, report: Progress) -> tuple[int, int]:
    """Back to back until both floors are reached or cancel; returns the loop's (start, end) in perf_counter_ns.

    `report` gets the loop's own progress (0-1) at most every PROGRESS_INTERVAL_NS.
    """
    duration_ns = int(min_duration_s * 1e9)

    def progress(count: int, elapsed_ns: int) -> None:
        done = min(count / min_iterations, elapsed_ns / duration_ns if duration_ns else 1.0)
        report(min(done, 1.0), f"timed loop: {count} iterations")

    span = time_iterations(call, sync, samples, cancel, clock=perf_counter_ns, iterations=min_iterations,
                           min_duration_ns=duration_ns, progress=progress)
    return span.start_ns, span.end_ns


def _expected_samples(settings: BenchmarkSettings, per_iteration_ns: int) -> int:
    by_duration = settings.min_duration_s * 1e9 / max(per_iteration_ns, 1)
    return int(min(max(settings.min_iterations, by_duration) * 1.25 + 16, MAX_PREALLOCATED_SAMPLES))
