"""Use cases shared by the CLI and the GUI: list devices, open a model, benchmark it.

No Qt here. Long work takes a `cancel` event and a `progress(fraction, message)`
callback, so the GUI can run it on a worker thread and the CLI in the foreground.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import storage
from engine.backends import Backend, BackendOptions, get_backend
from engine.device import discovery as device_discovery
from engine.device.discovery import Device, DeviceRunner
from engine.device.environment import fingerprint
from engine.errors import EngineError, InputError
from engine.measure.runner import (
    BenchmarkResult,
    BenchmarkSettings,
    Progress,
    run_benchmark,
)
from engine.measure.samples import SampleBuffer
from engine.measure.scenarios import ScenarioSettings
from engine.model.handle import ModelHandle
from engine.model.inputs import InputRequest, PreparedInputs, prepare_inputs
from engine.model.opening import load_model
from profilers.discovery import SourceSelection, default_sources
from profilers.energy import IdleBaseline, measure_idle_baseline
from profilers.errors import TelemetryError
from profilers.run_summary import summarize_snapshot
from profilers.sampler import (
    DEFAULT_HZ,
    MAX_HZ,
    MIN_HZ,
    TelemetrySampler,
    TelemetrySnapshot,
)
from storage import StorageError
from studio import __version__
from studio.resources import SAMPLE_MODELS, sample_model_path
from studio.usecases.recording import RunRecording
from studio.usecases.runs import open_store

BENCH_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BenchRequest:
    model: str
    backend: str | None = None  # None: the model format's natural backend
    device: str = "cpu"
    options: BackendOptions = field(default_factory=BackendOptions)
    inputs: InputRequest = field(default_factory=InputRequest)
    settings: BenchmarkSettings = field(default_factory=BenchmarkSettings)
    trust_pickle: bool = False
    provider_options: dict[str, str] = field(default_factory=dict)  # merged over the device's defaults
    telemetry_hz: float | None = DEFAULT_HZ  # None: no telemetry
    idle_baseline_s: float = 0.0  # seconds of quiet sampling before the run, subtracted from its energy
    save: bool = True  # record the run, its samples and telemetry in the database
    db_url: str | None = None  # None: $AUTOGLM_STUDIO_DB or the default SQLite file
    tags: tuple[str, ...] = ()
    notes: str = ""
    scenario: ScenarioSettings | None = None  # a LoadGen-style scenario instead of the plain timed loop
    find_max_rate: bool = False  # server scenario: search the highest rate that keeps p99 within the bound


@dataclass(frozen=True)
class BenchReport:
    request: BenchRequest
    model: ModelHandle
    device: Device
    runner: DeviceRunner
    inputs: PreparedInputs
    result: BenchmarkResult
    telemetry: dict | None = None  # the timed loop's telemetry summary; None when off or nothing was timed
    run_id: int | None = None  # where the run was saved, when it was
    save_error: str | None = None  # why saving failed; the samples were then exported to `unsaved_export`
    unsaved_export: str | None = None

    def to_dict(self) -> dict:
        """The `bench --json` document (schema_version 1)."""
        result = self.result
        return {
            "schema_version": BENCH_SCHEMA_VERSION,
            "tool_version": __version__,
            "status": result.status,
            "run_id": self.run_id,
            "model": self.model.to_dict(),
            "device": _device_dict(self.device, self.runner),
            "settings": {**self.request.settings.to_dict(), **self.request.options.to_dict(), "batch": result.batch_size},
            "inputs": self.inputs.to_dict(),
            "cold_start_ms": result.cold_start.to_dict(),
            "latency_ms": result.stats.latency_dict(),
            "unreliable_percentiles": list(result.stats.unreliable_percentiles),
            "throughput_per_s": result.stats.throughput_per_s,
            "samples": result.stats.count,
            "telemetry_hz": self.request.telemetry_hz,
            "telemetry": self.telemetry,
            "environment": result.environment,
        }

    def summary_dict(self) -> dict:
        """What the run record keeps as its summary (the samples, model and environment are stored apart)."""
        document = self.to_dict()
        keys = ("status", "settings", "inputs", "cold_start_ms", "latency_ms", "unreliable_percentiles",
                "throughput_per_s", "samples")
        return {**{key: document[key] for key in keys}, "session": self.result.session}


def list_devices() -> list[Device]:
    return device_discovery.discover()


def open_model(location: str, *, trust_pickle: bool = False) -> ModelHandle:
    return load_model(location, trust_pickle=trust_pickle)


def model_macs(handle: ModelHandle, inputs: InputRequest) -> str:
    """Multiply-accumulates per inference at the run's shapes, as the model card shows them (never a speed claim)."""
    from engine.model.handle import ModelFormat
    from engine.model.macs import count_macs

    if handle.format is not ModelFormat.ONNX:
        return "counted on ONNX graphs only: optimize exports this model to ONNX"
    shapes = {name: array.shape for name, array in prepare_inputs(
        handle.inputs, inputs, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds).feed.items()}
    report = count_macs(handle.path, shapes)
    shown = ", ".join(f"{name} {'×'.join(map(str, shape))}" for name, shape in shapes.items())
    unknown = f"; {report.unknown} layer(s) not counted" if report.unknown else ""
    return f"{report.total / 1e6:,.1f} M at {shown}{unknown}"


def sample_models() -> dict[str, str]:
    """The built-in sample models by short name, as paths."""
    return {name: str(sample_model_path(name)) for name in SAMPLE_MODELS}


@dataclass(frozen=True)
class ScenarioReport:
    """`bench --scenario`: a LoadGen-style scenario run, or the server scenario's maximum-rate search."""

    request: BenchRequest
    model: ModelHandle
    device: Device
    runner: DeviceRunner
    inputs: PreparedInputs
    result: object  # engine.measure.scenarios.ScenarioResult, or engine.measure.max_rate.MaxRateResult for --find-max-rate
    cold_start: dict
    session: dict
    telemetry: dict | None = None
    run_id: int | None = None
    save_error: str | None = None
    unsaved_export: str | None = None

    def to_dict(self) -> dict:
        key = "max_rate" if self.request.find_max_rate else "scenario"
        return {"schema_version": BENCH_SCHEMA_VERSION, "tool_version": __version__, "status": self.result.status,
                "run_id": self.run_id, "model": self.model.to_dict(), "device": _device_dict(self.device, self.runner),
                "inputs": self.inputs.to_dict(), "cold_start_ms": self.cold_start, key: self.result.to_dict(),
                "telemetry_hz": self.request.telemetry_hz, "telemetry": self.telemetry,
                "environment": fingerprint(self.session)}

    def summary_dict(self) -> dict:
        document = self.to_dict()
        summary = {key: document[key] for key in ("status", "inputs", "cold_start_ms") if key in document}
        if self.request.find_max_rate:
            return {**summary, "max_rate": document["max_rate"], "session": self.session}
        scenario = document["scenario"]
        # latency_ms and throughput as `runs list` and comparisons read them; the scenario's own figures beside
        return {**summary, "scenario": scenario, "latency_ms": scenario["latency_ms"],
                "throughput_per_s": scenario["throughput_per_s"], "samples": scenario["queries"],
                "session": self.session}


def _device_dict(device: Device, runner: DeviceRunner) -> dict:
    return {"id": device.id, "kind": device.kind, "name": device.name, "backend": runner.backend,
            "provider": runner.provider, "provider_options": dict(runner.options)}


class LiveFeed:
    """What a running benchmark exposes to a live view: latency samples and, once started, the telemetry sampler.

    The GUI timer reads `samples.snapshot()` and `sampler.snapshot()`; both are safe from any thread.
    """

    def __init__(self) -> None:
        self.samples = SampleBuffer()
        self.sampler: TelemetrySampler | None = None
        self.run_id: int | None = None


@dataclass(frozen=True)
class BenchPlan:
    """What a bench request resolves to, every check done, before anything runs."""

    handle: ModelHandle
    backend: Backend
    device: Device
    runner: DeviceRunner
    inputs: PreparedInputs


def plan_benchmark(request: BenchRequest) -> BenchPlan:
    """Open the model and resolve device and inputs, so bad input fails fast with a clear error."""
    if request.idle_baseline_s < 0:
        raise InputError(f"the idle baseline must be 0 or more seconds, got {request.idle_baseline_s:g}")
    if request.idle_baseline_s and not request.telemetry_hz:
        raise InputError("an idle baseline needs telemetry: give --telemetry-hz as well")
    if request.telemetry_hz and not MIN_HZ <= request.telemetry_hz <= MAX_HZ:
        raise InputError(f"telemetry rate must be between {MIN_HZ:g} and {MAX_HZ:g} Hz, got {request.telemetry_hz:g}")
    handle = open_model(request.model, trust_pickle=request.trust_pickle)
    backend_name = request.backend or handle.format.default_backend
    backend = get_backend(backend_name)
    device, runner = device_discovery.resolve(request.device, backend_name)
    if request.provider_options:
        runner = replace(runner, options={**runner.options, **request.provider_options})
    inputs = prepare_inputs(handle.inputs, request.inputs, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds)
    return BenchPlan(handle, backend, device, runner, inputs)


def benchmark_model(
    request: BenchRequest,
    *,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    live: LiveFeed | None = None,
) -> BenchReport:
    """Plan, then run the benchmark with telemetry, saving the run as it goes unless `request.save` is off."""
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
        report = _measure(request, plan, cancel, progress, live, recording)
        return _save(report, recording) if recording else report
    finally:
        if db is not None:
            db.close()


def _measure(request: BenchRequest, plan: BenchPlan, cancel: threading.Event, progress: Progress | None,
             live: LiveFeed, recording: RunRecording | None) -> BenchReport:
    sampler = None
    try:
        sampler = open_sampler(request.telemetry_hz) if request.telemetry_hz else None
        if sampler is not None:
            if recording is not None:
                sampler.subscribe(recording.on_telemetry)
            sampler.start()
            live.sampler = sampler
        baseline = _idle_baseline(sampler, request.idle_baseline_s, cancel, progress) if sampler else None
        if request.scenario is not None:
            return _measure_scenario(request, plan, cancel, progress, live, sampler, baseline)
        result = run_benchmark(plan.backend, plan.handle, plan.runner, request.options, plan.inputs, request.settings,
                               cancel=cancel, progress=progress, samples=live.samples)
        telemetry = _loop_telemetry(sampler, result, baseline) if sampler is not None else None
    except Exception as error:  # recorded as the run's failure, then raised on unchanged
        if recording is not None:
            recording.finish("failed", error=str(error) if isinstance(error, (EngineError, TelemetryError))
                             else f"{type(error).__name__}: {error}")
        raise
    finally:
        if sampler is not None:
            sampler.close()
    return BenchReport(request, plan.handle, plan.device, plan.runner, plan.inputs, result, telemetry)


def _measure_scenario(request: BenchRequest, plan: BenchPlan, cancel: threading.Event, progress: Progress | None,
                      live: LiveFeed, sampler: TelemetrySampler | None, baseline: IdleBaseline | None) -> ScenarioReport:
    from engine.measure.max_rate import find_max_rate
    from engine.measure.prepared_session import prepared_session
    from engine.measure.scenarios import run_scenario

    batch = plan.inputs.batch_size
    with prepared_session(plan.backend, plan.handle, plan.runner, request.options, plan.inputs.feed, progress) as ready:
        if request.find_max_rate:
            result = find_max_rate(ready, batch, request.scenario, cancel=cancel, progress=progress)
        else:
            result = run_scenario(ready, batch, request.scenario, cancel=cancel, progress=progress, samples=live.samples)
        cold_start, description = ready.cold_start_dict(), ready.description
    telemetry = None
    if sampler is not None and not request.find_max_rate:  # a search has no single timed window
        telemetry = window_telemetry(sampler, result.start_ns, result.start_ns + result.duration_ns,
                                     inferences=result.queries, items=result.items,
                                     latency_starts_ns=result.starts_ns, baseline=baseline)
    return ScenarioReport(request, plan.handle, plan.device, plan.runner, plan.inputs, result, cold_start, description,
                          telemetry)


def _save(report: BenchReport, recording: RunRecording) -> BenchReport:
    """Saves the outcome; if storage fails, the samples still reach a JSON file the user can keep or import."""
    try:
        recording.finish(report.result.status, summary=report.summary_dict(), telemetry=report.telemetry)
        return replace(report, run_id=recording.run_id)
    except StorageError as error:
        fallback = Path(tempfile.gettempdir()) / f"autoglm-unsaved-run-{recording.run_id}-{os.getpid()}.json"
        try:
            storage.export_run_data(recording.writer.snapshot(), fallback, "json")
            exported = str(fallback)
        except StorageError:
            exported = None
        return replace(report, save_error=str(error), unsaved_export=exported)


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


def _idle_baseline(sampler: TelemetrySampler, seconds: float, cancel: threading.Event,
                   progress: Progress | None) -> IdleBaseline | None:
    """Power while nothing of ours runs, measured before the model is even loaded."""
    if not seconds:
        return None
    if progress is not None:
        progress(0.0, f"idle baseline ({seconds:g} s)")
    start = time.perf_counter_ns()
    cancel.wait(seconds)
    snapshot = sampler.snapshot()
    return measure_idle_baseline(snapshot.specs, snapshot.series, start, time.perf_counter_ns())


def _loop_telemetry(sampler: TelemetrySampler, result: BenchmarkResult, baseline: IdleBaseline | None) -> dict | None:
    return window_telemetry(sampler, result.loop_start_ns, result.loop_end_ns, inferences=result.stats.count,
                            items=result.stats.count * result.batch_size, latency_starts_ns=result.starts_ns,
                            baseline=baseline)


def window_telemetry(sampler: TelemetrySampler, start_ns: int, end_ns: int, *, inferences: int, items: int,
                     latency_starts_ns=None, baseline: IdleBaseline | None = None) -> dict | None:
    """The telemetry summary of a timed window (energy per inference, per item, throttling); None if nothing ran."""
    sampler.stop()
    if inferences == 0 or end_ns <= start_ns:
        return None
    summary = summarize_snapshot(sampler.snapshot(), start_ns, end_ns, inferences=inferences, items=items,
                                 latency_timestamps_ns=latency_starts_ns, idle_baseline=baseline)
    return summary.to_dict()
