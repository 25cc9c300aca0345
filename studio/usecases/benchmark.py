"""Benchmark a model with telemetry, saving the run as it goes: the plain timed loop or a LoadGen-style scenario.

No Qt here. Long work takes a `cancel` event and a `progress(fraction, message)` callback, so the GUI can run it
on a worker thread and the CLI in the foreground.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import storage
from core.progress import Progress
from engine.errors import EngineError, InputError
from engine.measure.max_rate import find_max_rate
from engine.measure.prepared_session import prepared_session
from engine.measure.runner import BenchmarkResult, run_benchmark
from engine.measure.samples import SampleBuffer
from engine.measure.scenarios import run_scenario
from profilers.energy import IdleBaseline
from profilers.errors import TelemetryError
from profilers.sampler import TelemetrySampler
from storage import StorageError
from studio.usecases.bench_plan import BenchPlan, BenchRequest, plan_benchmark
from studio.usecases.bench_reports import BenchOutcome, BenchReport, ScenarioReport
from studio.usecases.recording import RunRecording
from studio.usecases.runs import open_store
from studio.usecases.telemetry import idle_baseline, open_sampler, window_telemetry

Outcome = TypeVar("Outcome", BenchReport, ScenarioReport)


class LiveFeed:
    """What a running benchmark exposes to a live view: latency samples and, once started, the telemetry sampler.

    The GUI timer reads `samples.snapshot()` and `sampler.snapshot()`; both are safe from any thread.
    """

    def __init__(self) -> None:
        self.samples = SampleBuffer()
        self.sampler: TelemetrySampler | None = None
        self.run_id: int | None = None


# How one kind of benchmark measures, once the sampler runs and the idle baseline is known.
Measurement = Callable[[BenchRequest, BenchPlan, threading.Event, Progress | None, LiveFeed,
                        TelemetrySampler | None, IdleBaseline | None], Outcome]


def benchmark_model(
    request: BenchRequest,
    *,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    live: LiveFeed | None = None,
) -> BenchOutcome:
    """Plan, then run the timed loop, or the request's scenario, with telemetry, saving the run as it goes unless
    `request.save` is off. A scenario gives a `ScenarioReport`, the plain loop a `BenchReport`."""
    if request.scenario is None:
        return benchmark_timed_loop(request, cancel=cancel, progress=progress, live=live)
    return _recorded(request, _measure_scenario, cancel, progress, live)


def benchmark_timed_loop(
    request: BenchRequest,
    *,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    live: LiveFeed | None = None,
) -> BenchReport:
    """The plain timed loop only, for use cases that build on its statistics (a layer profile follows it)."""
    if request.scenario is not None:
        raise InputError("this measures the plain timed loop; leave out --scenario and its options")
    return _recorded(request, _measure_loop, cancel, progress, live)


def _recorded(request: BenchRequest, measure: Measurement[Outcome], cancel: threading.Event | None,
              progress: Progress | None, live: LiveFeed | None) -> Outcome:
    plan = plan_benchmark(request)
    cancel = cancel or threading.Event()
    live = live or LiveFeed()
    db = open_store(request.db_url) if request.save else None  # a bad database fails before anything runs
    try:
        recording = None
        if db is not None:
            settings = {**request.settings.to_dict(), **request.options.to_dict(), "telemetry_hz": request.telemetry_hz}
            recording = RunRecording.start_bench(db, plan, settings, live.samples, tags=request.tags, notes=request.notes)
            live.run_id = recording.run_id
        report = _with_telemetry(request, plan, cancel, progress, live, recording, measure)
        return _save(report, recording) if recording else report
    finally:
        if db is not None:
            db.close()


def _with_telemetry(request: BenchRequest, plan: BenchPlan, cancel: threading.Event, progress: Progress | None,
                    live: LiveFeed, recording: RunRecording | None, measure: Measurement[Outcome]) -> Outcome:
    sampler = None
    try:
        sampler = open_sampler(request.telemetry_hz) if request.telemetry_hz else None
        if sampler is not None:
            if recording is not None:
                sampler.subscribe(recording.on_telemetry)
            sampler.start()
            live.sampler = sampler
        baseline = idle_baseline(sampler, request.idle_baseline_s, cancel, progress) if sampler else None
        return measure(request, plan, cancel, progress, live, sampler, baseline)
    except Exception as error:  # recorded as the run's failure, then raised on unchanged
        if recording is not None:
            recording.finish("failed", error=str(error) if isinstance(error, (EngineError, TelemetryError))
                             else f"{type(error).__name__}: {error}")
        raise
    finally:
        if sampler is not None:
            sampler.close()


def _measure_loop(request: BenchRequest, plan: BenchPlan, cancel: threading.Event, progress: Progress | None,
                  live: LiveFeed, sampler: TelemetrySampler | None, baseline: IdleBaseline | None) -> BenchReport:
    result = run_benchmark(plan.backend, plan.handle, plan.runner, request.options, plan.inputs, request.settings,
                           cancel=cancel, progress=progress, samples=live.samples)
    telemetry = _loop_telemetry(sampler, result, baseline) if sampler is not None else None
    return BenchReport(request, plan.handle, plan.device, plan.runner, plan.inputs, result, telemetry)


def _measure_scenario(request: BenchRequest, plan: BenchPlan, cancel: threading.Event, progress: Progress | None,
                      live: LiveFeed, sampler: TelemetrySampler | None, baseline: IdleBaseline | None
                      ) -> ScenarioReport:
    batch = plan.inputs.batch_size
    with prepared_session(plan.backend, plan.handle, plan.runner, request.options, plan.inputs.feed, progress) as ready:
        if request.find_max_rate:
            result = find_max_rate(ready, batch, request.scenario, cancel=cancel, progress=progress)
        else:
            result = run_scenario(ready, batch, request.scenario, cancel=cancel, progress=progress, samples=live.samples)
        cold_start, description = ready.cold_start, ready.description
    telemetry = None
    if sampler is not None and not request.find_max_rate:  # a search has no single timed window
        telemetry = window_telemetry(sampler, result.start_ns, result.start_ns + result.duration_ns,
                                     inferences=result.queries, items=result.items,
                                     latency_starts_ns=result.starts_ns, baseline=baseline)
    return ScenarioReport(request, plan.handle, plan.device, plan.runner, plan.inputs, result, cold_start, description,
                          telemetry)


def _loop_telemetry(sampler: TelemetrySampler, result: BenchmarkResult, baseline: IdleBaseline | None) -> dict | None:
    return window_telemetry(sampler, result.loop_start_ns, result.loop_end_ns, inferences=result.stats.count,
                            items=result.stats.count * result.batch_size, latency_starts_ns=result.starts_ns,
                            baseline=baseline)


def _save(report: Outcome, recording: RunRecording) -> Outcome:
    """Saves the outcome; if storage fails, the samples still reach a JSON file the user can keep or import."""
    try:
        recording.finish(report.status, summary=report.summary_dict(), telemetry=report.telemetry)
        return replace(report, run_id=recording.run_id)
    except StorageError as error:
        fallback = Path(tempfile.gettempdir()) / f"autoglm-unsaved-run-{recording.run_id}-{os.getpid()}.json"
        try:
            storage.export_run_data(recording.writer.snapshot(), fallback, "json")
            exported = str(fallback)
        except StorageError:
            exported = None
        return replace(report, save_error=getattr(error, "reason", str(error)), unsaved_export=exported)
