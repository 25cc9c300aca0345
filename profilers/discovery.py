"""Building the set of live telemetry sources for this machine.

The studio calls `default_sources()` once per run (or per `monitor` session) and hands the list
to a `TelemetrySampler`. Sources that find nothing on this machine still go in: their `open`
reports the reasons, which the UI and `monitor` show as unavailable metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from profilers.cpu_source import CpuSource
from profilers.metrics import SourceCapabilities, UnavailableMetric
from profilers.npu_source import NpuSource
from profilers.nvml_library import NvmlLibrary
from profilers.nvml_source import discover_nvml_sources
from profilers.rapl_source import RaplSource
from profilers.source import TelemetrySource
from profilers.thermal_source import ThermalSource


class UnavailableSource(TelemetrySource):
    """Stands for a whole class of device found missing at discovery (no NVIDIA driver), so its reason
    reaches the sampler's `unavailable()` list like any other."""

    def __init__(self, name: str, reasons: list[UnavailableMetric]):
        self.name = name
        self._reasons = reasons

    def open(self) -> SourceCapabilities:
        return SourceCapabilities(self.name, [], list(self._reasons))

    def read(self) -> dict[str, float]:
        return {}


@dataclass
class SourceSelection:
    cpu: bool = True
    gpu: bool = True
    rapl: bool = True
    thermal: bool = True
    npu: bool = True
    pid: int | None = None  # process whose CPU and RSS are reported; default: this one
    nvml_module: ModuleType | None = field(default=None, repr=False)  # tests inject a fake NVML here


def default_sources(selection: SourceSelection | None = None) -> list[TelemetrySource]:
    """Every live source for this machine, unopened (the sampler's `prepare` opens them)."""
    selection = selection or SourceSelection()
    sources: list[TelemetrySource] = []
    if selection.cpu:
        sources.append(CpuSource(selection.pid))
    if selection.gpu:
        gpus, reasons = discover_nvml_sources(NvmlLibrary(selection.nvml_module))
        sources += gpus if gpus else [UnavailableSource("nvml", reasons)]
    if selection.rapl:
        sources.append(RaplSource())
    if selection.thermal:
        sources.append(ThermalSource())
    if selection.npu:
        sources.append(NpuSource())
    return sources
