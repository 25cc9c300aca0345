"""Use cases shared by the CLI and the GUI: list devices, open a model, benchmark it.

No Qt here. Long work takes a `cancel` event and a `progress(fraction, message)`
callback, so the GUI can run it on a worker thread and the CLI in the foreground.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from engine import devices as device_discovery
from engine.backends import BackendOptions, get_backend
from engine.devices import Device, DeviceRunner
from engine.errors import InputError
from engine.inputs import InputRequest, PreparedInputs, prepare_inputs
from engine.models import ModelHandle, load_model
from engine.runner import BenchmarkResult, BenchmarkSettings, Progress, run_benchmark
from engine.samples import SampleBuffer
from profilers.discovery import SourceSelection, default_sources
from profilers.energy import IdleBaseline, measure_idle_baseline
from profilers.run_summary import summarize_snapshot
from profilers.sampler import DEFAULT_HZ, TelemetrySampler, TelemetrySnapshot
from studio import __version__
from studio.resources import SAMPLE_MODELS, sample_model_path

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


@dataclass(frozen=True)
class BenchReport:
    request: BenchRequest
    model: ModelHandle
    device: Device
    runner: DeviceRunner
    inputs: PreparedInputs
    result: BenchmarkResult
    telemetry: dict | None = None  # the timed loop's telemetry summary; None when off or nothing was timed

    def to_dict(self) -> dict:
        """The `bench --json` document (schema_version 1)."""
        result = self.result
        return {
            "schema_version": BENCH_SCHEMA_VERSION,
            "tool_version": __version__,
            "status": result.status,
            "model": self.model.to_dict(),
            "device": {
                "id": self.device.id,
                "kind": self.device.kind,
                "name": self.device.name,
                "backend": self.runner.backend,
                "provider": self.runner.provider,
                "provider_options": dict(self.runner.options),
            },
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


def list_devices() -> list[Device]:
    return device_discovery.discover()


def open_model(location: str, *, trust_pickle: bool = False) -> ModelHandle:
    return load_model(location, trust_pickle=trust_pickle)


def sample_models() -> dict[str, str]:
    """The built-in sample models by short name, as paths."""
    return {name: str(sample_model_path(name)) for name in SAMPLE_MODELS}


def benchmark(
    request: BenchRequest,
    *,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    samples: SampleBuffer | None = None,
) -> BenchReport:
    """Open the model, resolve device and inputs, then run the benchmark.

    Everything that can be checked before the model runs (file, device, shapes)
    is checked first, so bad input fails fast with a clear error.
    """
    handle = open_model(request.model, trust_pickle=request.trust_pickle)
    backend_name = request.backend or handle.format.default_backend
    backend = get_backend(backend_name)
    device, runner = device_discovery.resolve(request.device, backend_name)
    if request.provider_options:
        runner = replace(runner, options={**runner.options, **request.provider_options})
    inputs = prepare_inputs(handle.inputs, request.inputs, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds)
    if request.idle_baseline_s and not request.telemetry_hz:
        raise InputError("an idle baseline needs telemetry: give --telemetry-hz as well")
    if request.idle_baseline_s < 0:
        raise InputError(f"the idle baseline must be 0 or more seconds, got {request.idle_baseline_s:g}")
    cancel = cancel or threading.Event()
    sampler = open_sampler(request.telemetry_hz) if request.telemetry_hz else None
    try:
        baseline = None
        if sampler is not None:
            sampler.start()
            baseline = _idle_baseline(sampler, request.idle_baseline_s, cancel, progress)
        result = run_benchmark(backend, handle, runner, request.options, inputs, request.settings,
                               cancel=cancel, progress=progress, samples=samples)
        telemetry = _loop_telemetry(sampler, result, baseline) if sampler is not None else None
    finally:
        if sampler is not None:
            sampler.close()
    return BenchReport(request, handle, device, runner, inputs, result, telemetry)


def open_sampler(hz: float) -> TelemetrySampler:
    """A telemetry sampler over every source of this machine, opened (driver init) but not started."""
    sampler = TelemetrySampler(default_sources(SourceSelection(pid=os.getpid())), hz=hz)
    sampler.prepare()
    return sampler


def monitor(
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
    sampler.stop()
    if result.stats.count == 0 or result.loop_end_ns <= result.loop_start_ns:
        return None
    summary = summarize_snapshot(sampler.snapshot(), result.loop_start_ns, result.loop_end_ns,
                                 inferences=result.stats.count, items=result.stats.count * result.batch_size,
                                 latency_timestamps_ns=result.starts_ns, idle_baseline=baseline)
    return summary.to_dict()
