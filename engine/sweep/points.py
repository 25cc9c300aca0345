"""Turning a sweep point into something runnable, and measuring it with the adaptive stopping rule.

A point names a provider, a recipe label, a batch and a thread count; the caller supplies the model handle
for each recipe label (optimizing is the studio's job, done once per recipe before the sweep).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from core.latency_stats import LatencyStats
from core.progress import Progress
from engine.backends import Backend, BackendOptions, get_backend
from engine.device import discovery as device_discovery
from engine.device.discovery import Device, DeviceRunner
from engine.errors import DeviceUnavailableError, InputError
from engine.measure.adaptive_stopping import (
    AdaptiveRun,
    StoppingRule,
    measure_until_stable,
)
from engine.measure.prepared_session import prepared_session
from engine.measure.samples import SampleBuffer
from engine.model.handle import ModelHandle
from engine.model.inputs import InputRequest, PreparedInputs, prepare_inputs
from engine.sweep.grid import PointSummary, SweepPoint


@dataclass(frozen=True)
class PointTarget:
    """A point resolved: which model, runtime, device and inputs it runs."""

    point: SweepPoint
    handle: ModelHandle
    backend: Backend
    device: Device
    runner: DeviceRunner
    options: BackendOptions
    inputs: PreparedInputs


def resolve_provider(provider: str, backend: str, devices: list[Device] | None = None) -> tuple[Device, DeviceRunner]:
    """A device id ("cpu", "cuda:0", "npu") or an ONNX Runtime provider name ("CUDAExecutionProvider")."""
    if not provider.endswith("ExecutionProvider"):
        return device_discovery.resolve(provider, backend, devices)
    devices = device_discovery.discover() if devices is None else devices
    for device in devices:
        runner = device.runner_for(backend)
        if runner is not None and runner.provider == provider:
            if not device.available:
                raise DeviceUnavailableError(f"{provider} is unavailable: {device.reason}")
            return device, runner
    raise DeviceUnavailableError(f"no device on this machine runs {provider} with the {backend} backend")


def point_target(point: SweepPoint, models: Mapping[str | None, ModelHandle], *, backend: str | None = None,
                 inputs: InputRequest | None = None, options: BackendOptions | None = None,
                 devices: list[Device] | None = None) -> PointTarget:
    """Resolves the point's model (by recipe label), device, thread count and batch-sized inputs."""
    if point.recipe not in models:
        raise InputError(f"no model was given for recipe '{point.recipe}'")
    handle = models[point.recipe]
    backend_name = backend or handle.format.default_backend
    device, runner = resolve_provider(point.provider, backend_name, devices)
    request = replace(inputs or InputRequest(), batch=point.batch)
    prepared = prepare_inputs(handle.inputs, request, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds)
    if prepared.batch_size != point.batch:
        raise InputError(f"{handle.name} runs batch {prepared.batch_size}, not {point.batch}: its batch is fixed")
    point_options = replace(options or BackendOptions(), threads=point.threads)
    return PointTarget(point, handle, get_backend(backend_name), device, runner, point_options, prepared)


@dataclass(frozen=True)
class PointMeasurement:
    summary: PointSummary
    run: AdaptiveRun
    batch_size: int
    cold_start_ms: dict
    session: dict


def measure_point(target: PointTarget, rule: StoppingRule, *, cancel: threading.Event | None = None,
                  progress: Progress | None = None, samples: SampleBuffer | None = None) -> PointMeasurement:
    """A fresh session for the point (threads are a session setting), measured until `rule` says stop."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    report(0.0, "preparing the session")
    with prepared_session(target.backend, target.handle, target.runner, target.options, target.inputs.feed) as ready:
        run = measure_until_stable(ready, rule, cancel=cancel, progress=report, samples=samples)
        cold_start, session = ready.cold_start_dict(), ready.description
    return PointMeasurement(summarize_point(target.point, run, target.inputs.batch_size), run,
                            target.inputs.batch_size, cold_start, session)


def summarize_point(point: SweepPoint, run: AdaptiveRun, batch_size: int) -> PointSummary:
    stats = LatencyStats.of(run.latencies_ns, wall_ns=run.loop_end_ns - run.loop_start_ns, items=run.latencies_ns.size * batch_size)
    interval = None
    if run.interval_ns is not None:
        interval = (run.interval_ns[1] / 1e6, run.interval_ns[2] / 1e6)
    return PointSummary(
        point=point,
        status=run.status,
        samples=stats.count,
        items=stats.count * batch_size,
        percentiles_ms=dict(stats.percentiles_ms),
        median_ci_ms=interval,
        throughput_per_s=stats.throughput_per_s,
        converged=run.converged,
        stop_reason=run.stop_reason,
    )


def timed_window(measurement: PointMeasurement) -> tuple[int, int, np.ndarray]:
    """(loop start, loop end, iteration starts) in perf_counter_ns: what telemetry integrates energy over."""
    return measurement.run.loop_start_ns, measurement.run.loop_end_ns, measurement.run.starts_ns
