"""Telemetry as use cases: a sampler over every source of this machine, the live monitor, and the summary of a
timed window (energy per inference and per item, throttling) that benchmarks, sweeps and generation attach."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np

from core.progress import Progress
from profilers.discovery import SourceSelection, default_sources
from profilers.energy import IdleBaseline, measure_idle_baseline
from profilers.run_summary import summarize_snapshot
from profilers.sampler import TelemetrySampler, TelemetrySnapshot


def open_sampler(hz: float) -> TelemetrySampler:
    """A telemetry sampler over every source of this machine, opened (driver init) but not started."""
    sampler = TelemetrySampler(default_sources(SourceSelection(pid=os.getpid())), hz=hz)
    sampler.prepare()
    return sampler


def monitor_telemetry(
    hz: float,
    duration_s: float | None,
    on_update: Callable[[TelemetrySnapshot], None],
    *,
    refresh_s: float = 1.0,
    cancel: threading.Event | None = None,
) -> TelemetrySnapshot:
    """Sample every metric until `duration_s` passes (None: until cancel), reporting every `refresh_s`."""
    cancel = cancel or threading.Event()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    with open_sampler(hz) as sampler:
        while not cancel.is_set():
            remaining = refresh_s if deadline is None else min(refresh_s, deadline - time.monotonic())
            if remaining <= 0 or cancel.wait(remaining):
                break
            on_update(sampler.snapshot())
        sampler.stop()
        return sampler.snapshot()


def idle_baseline(sampler: TelemetrySampler, seconds: float, cancel: threading.Event,
                  progress: Progress | None) -> IdleBaseline | None:
    """Power while nothing of ours runs, measured before the model is even loaded (None for 0 seconds)."""
    if not seconds:
        return None
    if progress is not None:
        progress(0.0, f"idle baseline ({seconds:g} s)")
    start = time.perf_counter_ns()
    cancel.wait(seconds)
    snapshot = sampler.snapshot()
    return measure_idle_baseline(snapshot.specs, snapshot.series, start, time.perf_counter_ns())


def window_telemetry(sampler: TelemetrySampler, start_ns: int, end_ns: int, *, inferences: int, items: int,
                     latency_starts_ns: np.ndarray | None = None, baseline: IdleBaseline | None = None) -> dict | None:
    """The telemetry summary of a timed window (energy per inference, per item, throttling); None if nothing ran."""
    sampler.stop()
    if inferences == 0 or end_ns <= start_ns:
        return None
    summary = summarize_snapshot(sampler.snapshot(), start_ns, end_ns, inferences=inferences, items=items,
                                 latency_timestamps_ns=latency_starts_ns, idle_baseline=baseline)
    return summary.to_dict()
