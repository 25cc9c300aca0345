"""The highest server-scenario arrival rate whose p99 latency stays within the bound, by binary search.

The session serves one query at a time, so no rate above its capacity (1 / median service time) can hold
any bound for long; the search starts from there (and looks a little above, as the estimate is noisy).
Every trial is a full server scenario with the same seed (the same burst pattern, scaled to the rate), and
it stops early once the bound is broken beyond repair.
A trial "holds" only when it is VALID: long enough, enough queries, and p99 within the bound. Measurements
are noisy near the limit, so every trial is reported, not only the answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from time import perf_counter_ns

import numpy as np

from core.progress import Progress
from engine.errors import BackendError, InputError, first_line
from engine.measure.prepared_session import PreparedSession
from engine.measure.samples import SampleBuffer
from engine.measure.scenarios import ScenarioResult, ScenarioSettings, run_scenario
from engine.measure.timed_loop import time_iterations, warm_up

CAPACITY_PROBE_CALLS = 20
LOWEST_FRACTION = 1 / 64  # of capacity: below this a bound that still fails is out of reach of any rate
ABOVE_CAPACITY = 1.25  # the highest rate tried when the measured capacity itself holds the bound


@dataclass(frozen=True)
class RateTrial:
    rate_qps: float
    held: bool
    p99_ms: float | None
    validity_reasons: tuple[str, ...]
    result: ScenarioResult

    def to_dict(self) -> dict:
        return {"rate_qps": self.rate_qps, "held": self.held, "p99_ms": self.p99_ms,
                "reasons": list(self.validity_reasons), "queries": self.result.queries,
                "duration_s": self.result.duration_ns / 1e9}


@dataclass(frozen=True)
class MaxRateResult:
    latency_bound_ms: float
    capacity_qps: float  # 1 / median service time measured before the search
    max_rate_qps: float | None  # the highest rate that held; None when none did
    trials: tuple[RateTrial, ...]
    status: str  # "completed" or "cancelled"
    note: str

    def to_dict(self) -> dict:
        return {"latency_bound_ms": self.latency_bound_ms, "capacity_qps": self.capacity_qps,
                "max_rate_qps": self.max_rate_qps, "status": self.status, "note": self.note,
                "trials": [trial.to_dict() for trial in self.trials]}


def find_max_rate(prepared: PreparedSession, batch_size: int, settings: ScenarioSettings, *,
                  relative_tolerance: float = 0.05, max_trials: int = 10, cancel: threading.Event | None = None,
                  progress: Progress | None = None) -> MaxRateResult:
    """Binary search over the arrival rate; `settings` gives the bound, seed, minimums and warm-up.

    Stops when the bracket is narrower than `relative_tolerance` of its top or after `max_trials` trials.
    """
    if settings.latency_bound_ms is None or not settings.latency_bound_ms > 0:
        raise InputError("finding the maximum rate needs a latency bound above 0 ms (--latency-bound-ms)")
    if not 0 < relative_tolerance < 1 or max_trials < 2:
        raise InputError("the search needs a tolerance between 0 and 1 and at least 2 trials")
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    capacity = _capacity_qps(prepared, settings.warmup, cancel)
    trials: list[RateTrial] = []

    def trial(rate: float) -> bool:
        report(len(trials) / max_trials, f"trying {rate:.1f} queries per second")
        trial_settings = replace(settings, scenario="server", target_qps=rate, warmup=0)
        result = run_scenario(prepared, batch_size, trial_settings, cancel=cancel, abort_when_bound_broken=True)
        held = result.validity.valid and not cancel.is_set()
        trials.append(RateTrial(rate, held, result.latency.percentiles_ms["p99"], result.validity.reasons, result))
        return held

    if trial(capacity):  # the capacity estimate is noisy: look a little above it before bisecting
        low, high = capacity, capacity * ABOVE_CAPACITY
        if trial(high):
            return _finish(settings, capacity, high, trials, cancel,
                           f"held even at {ABOVE_CAPACITY:g}x the measured capacity: a trial this short cannot show "
                           "the queue growing; give a longer minimum duration")
    else:
        low = high = capacity
        while low > capacity * LOWEST_FRACTION and not cancel.is_set():
            high, low = low, low / 4
            if trial(low):
                break
        else:
            return _finish(settings, capacity, None, trials, cancel,
                           f"even {low:.2f} queries per second missed the bound: the model alone takes too long")
    while (high - low) / high > relative_tolerance and len(trials) < max_trials and not cancel.is_set():
        middle = (low + high) / 2
        if trial(middle):
            low = middle
        else:
            high = middle
    return _finish(settings, capacity, low, trials, cancel,
                   f"held at {low:.1f}, failed at {high:.1f} queries per second")


def _capacity_qps(prepared: PreparedSession, warmup: int, cancel: threading.Event) -> float:
    """After the warm-up, back-to-back calls: the rate this session could serve if queries never waited.

    The probe itself ignores cancel: it is short, and the search needs a capacity to start from (its first trial
    sees the cancel).
    """
    probe = SampleBuffer(CAPACITY_PROBE_CALLS)
    try:
        warm_up(prepared.call, prepared.sync, warmup, cancel, clock=perf_counter_ns)
        time_iterations(prepared.call, prepared.sync, probe, threading.Event(), clock=perf_counter_ns,
                        iterations=CAPACITY_PROBE_CALLS)
    except prepared.session.run_errors as error:
        raise BackendError(f"the model failed during the measurement: {first_line(error)}") from error
    return 1e9 / float(np.median(probe.view()[1]))


def _finish(settings: ScenarioSettings, capacity: float, rate: float | None, trials: list[RateTrial],
            cancel: threading.Event, note: str) -> MaxRateResult:
    status = "cancelled" if cancel.is_set() else "completed"
    if cancel.is_set():
        note = "stopped by the user; the rate shown is the best that held before then"
    return MaxRateResult(settings.latency_bound_ms, capacity, rate, tuple(trials), status, note)
