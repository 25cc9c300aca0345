"""The one timed-iteration loop: every measurement in engine.measure times its calls here.

An iteration is timed as call() then sync() between two clock readings and nothing else, so the clock sees the
device's work and not ours (DESIGN §4); appending the sample, asking the stop rule and reporting progress happen
between iterations. Cancel is checked before every issue, so a stop takes effect within one iteration.

The caller decides when the loop stops (floors, a stop rule) and when each iteration is issued: back to back,
or on a schedule (a server's arrivals), where the latency counts from the scheduled time, waiting behind the
previous query included, and the call's own time is kept apart as its service time. The clock is a parameter: every
measurement passes perf_counter_ns, and tests a virtual clock.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns

import numpy as np

from engine.measure.samples import SampleBuffer

PROGRESS_INTERVAL_NS = 100_000_000
SPIN_BELOW_NS = 1_000_000  # sleep until 1 ms before an issue time, then spin, so an iteration is not late by a sleep

Clock = Callable[[], int]
StopRule = Callable[[int, int, int], bool]  # (iterations so far, ns since the loop start, last latency ns) -> done?
LoopProgress = Callable[[int, int], None]  # (iterations so far, ns since the loop start)


@dataclass(frozen=True)
class Schedule:
    """When each iteration is issued, instead of back to back.

    `issue_at(i)` waits until iteration i is due and returns that time; times count from `origin_ns`, which is
    also where the loop's span starts. `service_ns[i]` receives the call's own time.
    """

    origin_ns: int
    issue_at: Callable[[int], int]
    service_ns: np.ndarray


@dataclass(frozen=True)
class LoopSpan:
    start_ns: int
    end_ns: int  # when the last iteration completed; start_ns when none ran
    iterations: int

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def warm_up(call, sync, iterations: int, cancel: threading.Event, *, clock: Clock) -> int | None:
    """Runs the uncounted warm-up; returns its mean time per iteration in ns (None when none ran)."""
    if iterations == 0:
        return None
    start = clock()
    done = 0
    while done < iterations and not cancel.is_set():
        call()
        if sync is not None:
            sync()
        done += 1
    return (clock() - start) // done if done else None


def time_iterations(call, sync, samples: SampleBuffer, cancel: threading.Event, *, clock: Clock,
                    iterations: int | None = None, min_duration_ns: int = 0, stop: StopRule | None = None,
                    progress: LoopProgress | None = None, schedule: Schedule | None = None) -> LoopSpan:
    """Times iterations into `samples` as (issue time, latency) until the loop is done or `cancel` is set.

    Done as soon as `stop` says so, or once both `iterations` ran and `min_duration_ns` passed (DESIGN §4's
    floors, checked inline: they are most loops' only rule). `progress` is called at most every
    PROGRESS_INTERVAL_NS, never after the iteration that ends the loop.
    """
    append, cancelled = samples.append, cancel.is_set
    floor = sys.maxsize if iterations is None else iterations
    issue_at = None if schedule is None else schedule.issue_at
    service_ns = None if schedule is None else schedule.service_ns
    start = clock() if schedule is None else schedule.origin_ns
    end = start
    count = 0
    deadline = start + min_duration_ns
    next_report = start + PROGRESS_INTERVAL_NS
    while not cancelled():
        if issue_at is not None:
            issued = issue_at(count)
            if cancelled():
                break
        begin = clock()
        call()
        if sync is not None:
            sync()
        end = clock()
        if issue_at is None:
            issued = begin
        else:
            service_ns[count] = end - begin
        append(issued, end - issued)
        count += 1
        if stop is not None and stop(count, end - start, end - issued):
            break
        if count >= floor and end >= deadline:
            break
        if end >= next_report and progress is not None:
            next_report = end + PROGRESS_INTERVAL_NS
            progress(count, end - start)
    return LoopSpan(start, end, count)


def wait_until(deadline_ns: int, cancel: threading.Event) -> None:
    """Sleeps until just before `deadline_ns` (perf_counter_ns), then spins; returns early on cancel."""
    remaining = deadline_ns - perf_counter_ns()
    if remaining > 2 * SPIN_BELOW_NS and cancel.wait((remaining - SPIN_BELOW_NS) / 1e9):
        return
    while perf_counter_ns() < deadline_ns and not cancel.is_set():
        pass
