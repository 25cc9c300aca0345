"""What a benchmark returns: the plain timed loop's `BenchReport`, or a LoadGen-style `ScenarioReport`.

`benchmark_model` returns either (`BenchOutcome`); callers tell them apart by type. `to_dict()` is the
`bench --json` document and `summary_dict()` what the saved run keeps; views read the typed fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.device.discovery import Device, DeviceRunner
from engine.device.environment import fingerprint
from engine.measure.max_rate import MaxRateResult
from engine.measure.prepared_session import ColdStart
from engine.measure.runner import BenchmarkResult
from engine.measure.scenarios import ScenarioResult
from engine.model.handle import ModelHandle
from engine.model.inputs import PreparedInputs
from studio import __version__
from studio.usecases.bench_plan import BenchRequest

BENCH_SCHEMA_VERSION = 1


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

    @property
    def status(self) -> str:
        return self.result.status

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


@dataclass(frozen=True)
class ScenarioReport:
    """`bench --scenario`: a LoadGen-style scenario run (`ScenarioResult`), or the server scenario's maximum-rate
    search (`MaxRateResult`, `bench --find-max-rate`)."""

    request: BenchRequest
    model: ModelHandle
    device: Device
    runner: DeviceRunner
    inputs: PreparedInputs
    result: ScenarioResult | MaxRateResult
    cold_start: ColdStart
    session: dict
    telemetry: dict | None = None  # the scenario's telemetry summary; a search has no single window, so None
    run_id: int | None = None
    save_error: str | None = None
    unsaved_export: str | None = None

    @property
    def status(self) -> str:
        return self.result.status

    def to_dict(self) -> dict:
        key = "max_rate" if isinstance(self.result, MaxRateResult) else "scenario"
        return {"schema_version": BENCH_SCHEMA_VERSION, "tool_version": __version__, "status": self.result.status,
                "run_id": self.run_id, "model": self.model.to_dict(), "device": _device_dict(self.device, self.runner),
                "inputs": self.inputs.to_dict(), "cold_start_ms": self.cold_start.to_dict(),
                key: self.result.to_dict(), "telemetry_hz": self.request.telemetry_hz, "telemetry": self.telemetry,
                "environment": fingerprint(self.session)}

    def summary_dict(self) -> dict:
        document = self.to_dict()
        summary = {key: document[key] for key in ("status", "inputs", "cold_start_ms")}
        if isinstance(self.result, MaxRateResult):
            return {**summary, "max_rate": document["max_rate"], "session": self.session}
        scenario = document["scenario"]
        # latency_ms and throughput as `runs list` and comparisons read them; the scenario's own figures beside
        return {**summary, "scenario": scenario, "latency_ms": scenario["latency_ms"],
                "throughput_per_s": scenario["throughput_per_s"], "samples": scenario["queries"],
                "session": self.session}


BenchOutcome = BenchReport | ScenarioReport


def _device_dict(device: Device, runner: DeviceRunner) -> dict:
    return {"id": device.id, "kind": device.kind, "name": device.name, "backend": runner.backend,
            "provider": runner.provider, "provider_options": dict(runner.options)}
