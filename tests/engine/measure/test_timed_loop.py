"""The one timed loop, on a virtual clock: what it times, when it stops, and how a schedule charges queueing."""

from __future__ import annotations

import threading
from itertools import pairwise

import numpy as np

from engine.measure.samples import SampleBuffer
from engine.measure.timed_loop import (
    PROGRESS_INTERVAL_NS,
    Schedule,
    time_iterations,
    warm_up,
)
from tests.engine.measure.virtual_clock import MS, VirtualClock, fixed_service


def test_back_to_back_iterations_run_until_both_floors():
    # setup: 2 ms calls, at least 10 of them and 50 ms
    clock = VirtualClock()
    loop_start = clock.now
    samples = SampleBuffer()

    # execute
    span = time_iterations(fixed_service(clock, 2 * MS), None, samples, threading.Event(), clock=clock, iterations=10,
                           min_duration_ns=50 * MS)

    # assert: the duration floor is the later one; each start is the previous end
    starts, latencies = samples.snapshot()
    assert span.iterations == 25 and span.duration_ns == 50 * MS and span.start_ns == loop_start
    assert np.all(latencies == 2 * MS) and np.all(np.diff(starts) == 2 * MS) and starts[0] == span.start_ns


def test_device_work_is_inside_the_clock():
    # setup: the call queues 1 ms of work, sync waits 3 ms more for it
    clock = VirtualClock()
    samples = SampleBuffer()

    def sync() -> None:
        clock.now += 3 * MS

    # execute
    time_iterations(fixed_service(clock, MS), sync, samples, threading.Event(), clock=clock, iterations=4)

    # assert
    assert samples.snapshot()[1].tolist() == [4 * MS] * 4


def test_a_stop_rule_sees_every_iteration_and_ends_the_loop_before_the_floors():
    # setup
    clock = VirtualClock()
    seen = []

    def stop(count: int, elapsed_ns: int, latency_ns: int) -> bool:
        seen.append((count, elapsed_ns, latency_ns))
        return count == 3

    # execute
    span = time_iterations(fixed_service(clock, MS), None, SampleBuffer(), threading.Event(), clock=clock, iterations=3,
                           stop=stop)

    # assert
    assert span.iterations == 3 and seen == [(1, MS, MS), (2, 2 * MS, MS), (3, 3 * MS, MS)]


def test_without_floors_or_rule_only_cancel_ends_the_loop_within_one_iteration():
    # setup
    clock = VirtualClock()
    cancel = threading.Event()
    calls: list[int] = []

    def call() -> None:
        fixed_service(clock, MS, calls)()
        if len(calls) == 6:
            cancel.set()

    # execute
    span = time_iterations(call, None, SampleBuffer(), cancel, clock=clock)

    # assert
    assert span.iterations == 6 and len(calls) == 6


def test_progress_comes_at_intervals_and_never_after_the_last_iteration():
    # setup: 10 ms calls for 1 s
    clock = VirtualClock()
    reports = []

    # execute
    span = time_iterations(fixed_service(clock, 10 * MS), None, SampleBuffer(), threading.Event(), clock=clock,
                           iterations=100, progress=lambda count, elapsed_ns: reports.append((count, elapsed_ns)))

    # assert
    assert span.iterations == 100
    assert reports == [(count, count * 10 * MS) for count in range(10, 100, 10)]
    assert all(later - earlier >= PROGRESS_INTERVAL_NS for (_, earlier), (_, later) in pairwise(reports))


def test_a_schedule_charges_waiting_to_the_latency_and_keeps_the_service_time_apart():
    # setup: 3 ms calls issued every 2 ms from the origin: each query waits 1 ms longer than the one before
    clock = VirtualClock()
    origin = clock.now + MS
    samples = SampleBuffer()

    def issue_at(index: int) -> int:
        due = origin + index * 2 * MS
        clock.now = max(clock.now, due)  # a virtual wait
        return due

    schedule = Schedule(origin, issue_at, np.empty(5, dtype=np.int64))

    # execute
    span = time_iterations(fixed_service(clock, 3 * MS), None, samples, threading.Event(), clock=clock, iterations=5,
                           schedule=schedule)

    # assert
    starts, latencies = samples.snapshot()
    assert starts.tolist() == [origin + index * 2 * MS for index in range(5)]
    assert latencies.tolist() == [(3 + index) * MS for index in range(5)]
    assert schedule.service_ns.tolist() == [3 * MS] * 5
    assert span.start_ns == origin and span.end_ns == origin + 15 * MS


def test_a_query_whose_wait_was_cancelled_is_not_issued():
    # setup
    clock = VirtualClock()
    cancel = threading.Event()
    calls: list[int] = []

    def issue_at(index: int) -> int:
        if index == 2:
            cancel.set()  # the user stops the run while the loop waits for the third arrival
        return clock.now

    schedule = Schedule(clock.now, issue_at, np.empty(10, dtype=np.int64))

    # execute
    span = time_iterations(fixed_service(clock, MS, calls), None, SampleBuffer(), cancel, clock=clock, iterations=10,
                           schedule=schedule)

    # assert
    assert span.iterations == 2 and len(calls) == 2


def test_warm_up_returns_its_mean_time_per_iteration():
    # setup
    clock = VirtualClock()
    cancel = threading.Event()

    # execute
    mean = warm_up(fixed_service(clock, 4 * MS), None, 5, cancel, clock=clock)
    none_ran = warm_up(fixed_service(clock, 4 * MS), None, 0, cancel, clock=clock)
    cancel.set()
    cancelled = warm_up(fixed_service(clock, 4 * MS), None, 5, cancel, clock=clock)

    # assert
    assert mean == 4 * MS and none_ran is None and cancelled is None
