"""The sampler thread: start, stop, failure isolation, subscribers, snapshots and ring buffers.

No test depends on timing: threads are awaited through Events with a generous deadlock guard,
and sampling logic is driven by `sample_once` with a fake clock.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from profilers.errors import (
    SamplerConfigError,
    SamplerStateError,
    SourceReadError,
    TelemetryError,
)
from profilers.metrics import MetricKind, MetricSpec, SourceCapabilities
from profilers.ring_buffer import RingBuffer
from profilers.sampler import TelemetrySampler
from profilers.source import SourceState, TelemetrySource

GUARD_S = 10.0  # only against a hang; never reached when the code works


class CountingSource(TelemetrySource):
    """Reports how many times it was read; sets `reached` after `target` reads; can fail on read `fail_at`."""

    def __init__(self, name: str, target: int = 3, fail_at: int | None = None, fail_open: bool = False):
        self.name = name
        self.reads = 0
        self.target = target
        self.fail_at = fail_at
        self.fail_open = fail_open
        self.reached = threading.Event()
        self.closed = 0

    def open(self) -> SourceCapabilities:
        if self.fail_open:
            raise OSError(f"{self.name} device node vanished")
        return SourceCapabilities(self.name, [MetricSpec("reads", "", self.name, MetricKind.MEASURED)])

    def read(self) -> dict[str, float]:
        self.reads += 1
        if self.fail_at is not None and self.reads >= self.fail_at:
            raise SourceReadError(f"{self.name} stopped answering")
        if self.reads >= self.target:
            self.reached.set()
        return {f"{self.name}/reads": float(self.reads)}

    def close(self) -> None:
        self.closed += 1


def fake_clock():
    ticks = iter(range(0, 10**15, 10_000_000))
    return lambda: next(ticks)


@pytest.mark.parametrize("hz", [0.5, 0, 100.5, 1000])
def test_rate_outside_1_to_100_hz_is_refused(hz):
    with pytest.raises(SamplerConfigError, match="between 1 and 100 Hz"):
        TelemetrySampler([], hz=hz)


def test_duplicate_source_names_are_refused():
    with pytest.raises(SamplerConfigError, match="unique"):
        TelemetrySampler([CountingSource("a"), CountingSource("a")])


def test_thread_starts_samples_and_stops():
    # setup
    source = CountingSource("a", target=3)
    sampler = TelemetrySampler([source], hz=100)
    # execute
    sampler.start()
    reached = source.reached.wait(GUARD_S)
    with pytest.raises(SamplerStateError, match="already running"):
        sampler.start()
    sampler.stop()
    reads_after_stop = source.reads
    sampler.stop()  # a second stop is harmless
    sampler.close()
    # assert
    assert reached
    assert not sampler.running
    assert not any(t.name == "telemetry-sampler" for t in threading.enumerate())
    assert source.reads == reads_after_stop  # nothing sampled after stop returned
    series = sampler.snapshot().series["a/reads"]
    assert list(series.values) == list(np.arange(1, len(series) + 1, dtype=float))
    assert np.all(np.diff(series.t_ns) > 0)
    assert source.closed == 1


def test_a_failing_source_is_isolated_while_the_thread_runs():
    # setup
    broken = CountingSource("broken", fail_at=2)
    healthy = CountingSource("healthy", target=6)
    sampler = TelemetrySampler([broken, healthy], hz=100)
    # execute
    with sampler:
        reached = healthy.reached.wait(GUARD_S)
    # assert
    assert reached
    status = sampler.statuses["broken"]
    assert status.state is SourceState.FAILED
    assert status.error == "SourceReadError: broken stopped answering"
    assert broken.reads == 2  # never read again after failing
    assert sampler.statuses["healthy"].state is SourceState.CLOSED
    assert len(sampler.snapshot().series["healthy/reads"]) >= 6


def test_a_source_failing_to_open_does_not_stop_the_others():
    # setup
    sampler = TelemetrySampler([CountingSource("bad", fail_open=True), CountingSource("good")], clock=fake_clock())
    # execute
    sampler.prepare()
    sampler.sample_once()
    snapshot = sampler.snapshot()
    # assert
    assert snapshot.statuses["bad"].state is SourceState.FAILED
    assert "device node vanished" in snapshot.statuses["bad"].error
    assert [u.reason for u in snapshot.unavailable] == ["source failed: OSError: bad device node vanished"]
    assert len(snapshot.series["good/reads"]) == 1


def test_subscribers_get_each_reading_and_a_broken_one_is_dropped_and_reported():
    # setup
    sampler = TelemetrySampler([CountingSource("a")], clock=fake_clock())
    sampler.prepare()
    received = []
    subscription = sampler.subscribe(received.extend)

    def broken(readings):
        raise RuntimeError("disk full")

    sampler.subscribe(broken)
    # execute
    sampler.sample_once()
    sampler.sample_once()
    subscription.cancel()
    sampler.sample_once()
    # assert
    assert [r.values for r in received] == [{"a/reads": 1.0}, {"a/reads": 2.0}]
    assert all(r.source == "a" and r.live for r in received)
    assert len(sampler.subscriber_errors) == 1 and "RuntimeError: disk full" in sampler.subscriber_errors[0]


def test_snapshot_since_and_sample_before_prepare():
    # setup
    sampler = TelemetrySampler([CountingSource("a")], clock=fake_clock())
    with pytest.raises(SamplerStateError):
        sampler.sample_once()
    sampler.prepare()
    stamps = [sampler.sample_once()[0].t_ns for _ in range(5)]
    # execute
    recent = sampler.snapshot(since_ns=stamps[3]).series["a/reads"]
    # assert
    assert list(recent.values) == [4.0, 5.0]
    assert list(recent.t_ns) == stamps[3:]


def test_ring_buffer_keeps_the_newest_samples_in_order():
    # setup
    ring = RingBuffer(4)
    # execute
    for i in range(7):
        ring.append(i * 10, float(i))
    series = ring.series()
    # assert
    assert list(series.t_ns) == [30, 40, 50, 60]
    assert list(series.values) == [3.0, 4.0, 5.0, 6.0]
    assert ring.overwritten == 3 and ring.oldest_ns() == 30
    assert list(ring.series(since_ns=45).values) == [5.0, 6.0]


def test_sampler_buffers_are_preallocated_from_rate_and_duration():
    # setup
    sampler = TelemetrySampler([CountingSource("a")], hz=10, buffer_seconds=0.3, clock=fake_clock())
    sampler.prepare()
    # execute
    for _ in range(5):
        sampler.sample_once()
    snapshot = sampler.snapshot()
    # assert
    assert list(snapshot.series["a/reads"].values) == [3.0, 4.0, 5.0]
    assert snapshot.overwritten == {"a/reads": 2}


def test_an_error_on_the_sampler_thread_reaches_the_caller_of_stop():
    # setup: the clock breaks as soon as the thread uses it
    def broken_clock() -> int:
        raise RuntimeError("clock source gone")

    sampler = TelemetrySampler([CountingSource("a")], clock=broken_clock)
    # execute
    sampler.start()
    # assert
    with pytest.raises(TelemetryError, match="thread stopped early: RuntimeError: clock source gone"):
        sampler.stop()
    assert not sampler.running


def test_a_source_returning_non_numbers_is_marked_failed():
    # setup
    class Garbage(CountingSource):
        def read(self) -> dict[str, float]:
            return {f"{self.name}/reads": "n/a"}

    sampler = TelemetrySampler([Garbage("g"), CountingSource("a")], clock=fake_clock())
    sampler.prepare()
    # execute
    sampler.sample_once()
    # assert
    assert sampler.statuses["g"].state is SourceState.FAILED and "ValueError" in sampler.statuses["g"].error
    assert len(sampler.snapshot().series["a/reads"]) == 1


def test_two_sources_producing_the_same_metric_fail_the_second_one_only():
    # setup
    class Twin(CountingSource):
        def open(self) -> SourceCapabilities:
            return SourceCapabilities(self.name, [MetricSpec("reads", "", "a", MetricKind.MEASURED)])

    sampler = TelemetrySampler([CountingSource("a"), Twin("twin")], clock=fake_clock())
    # execute
    sampler.prepare()
    sampler.sample_once()
    # assert
    assert sampler.statuses["a"].state is SourceState.ACTIVE
    assert sampler.statuses["twin"].state is SourceState.FAILED and "a/reads" in sampler.statuses["twin"].error
    assert list(sampler.snapshot().series["a/reads"].values) == [1.0]
