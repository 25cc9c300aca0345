"""A benchmark request, and what it resolves to before anything runs: every check done, so bad input fails fast."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine.backends import Backend, BackendOptions, get_backend
from engine.device import discovery as device_discovery
from engine.device.discovery import Device, DeviceRunner
from engine.errors import InputError
from engine.measure.runner import BenchmarkSettings
from engine.measure.scenarios import ScenarioSettings
from engine.model.handle import ModelHandle
from engine.model.inputs import InputRequest, PreparedInputs, prepare_inputs
from profilers.sampler import DEFAULT_HZ, MAX_HZ, MIN_HZ
from studio.usecases.models import open_model


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
