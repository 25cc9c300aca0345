"""What a telemetry source says it can (and cannot) measure.

Every figure the studio shows next to a latency must say where it came from: a `MetricSpec`
carries the unit, the device it covers and whether the value is measured by hardware
or derived from measured values; nothing is modelled or guessed. A metric that cannot be read is an
`UnavailableMetric` with a reason a user can act on; it is never reported as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class MetricKind(str, Enum):
    MEASURED = "measured"  # read from a hardware counter or sensor
    DERIVED = "derived"  # computed from measured values (e.g. power from energy-counter deltas)


# Names shared by sources and the run summary, so the summary finds power, energy, clocks and
# temperatures on any device without knowing which source produced them.
POWER = "power"  # W
ENERGY = "energy"  # J, cumulative counter (spec.cumulative is True)
TEMPERATURE = "temperature"  # degC
TEMPERATURE_LIMIT = "temperature_limit"  # degC at which the device starts slowing down
UTILISATION = "utilisation"  # %
SM_CLOCK = "sm_clock"  # MHz (GPU streaming-multiprocessor clock)
MEMORY_CLOCK = "memory_clock"  # MHz
FREQUENCY = "frequency"  # MHz (CPU)
CLOCK_EVENT_REASONS = "clock_event_reasons"  # NVML bitmask, decoded by profilers.nvml_reasons
POWER_LIMIT = "power_limit"  # W
MEMORY_USED = "memory_used"  # B
MEMORY_TOTAL = "memory_total"  # B
BUSY_TIME = "busy_time"  # s, cumulative
PROCESS_CPU = "process_cpu"  # % of one core used by the measured process (device "process")


@dataclass(frozen=True)
class MetricSpec:
    """One time series a source produces. `key` ("gpu0/power") is unique within a sampler."""

    name: str
    unit: str
    device: str
    kind: MetricKind
    cumulative: bool = False  # a counter that only grows: use deltas, never averages
    note: str = ""  # caveats a user should see next to the number (averaging window, sensor used)

    @property
    def key(self) -> str:
        return f"{self.device}/{self.name}"

    def to_dict(self) -> dict:
        return {"name": self.name, "unit": self.unit, "device": self.device, "kind": self.kind.value,
                "cumulative": self.cumulative, "note": self.note}

    @classmethod
    def from_dict(cls, data: dict) -> MetricSpec:
        return cls(name=str(data["name"]), unit=str(data["unit"]), device=str(data["device"]),
                   kind=MetricKind(data["kind"]), cumulative=bool(data.get("cumulative", False)),
                   note=str(data.get("note", "")))


@dataclass(frozen=True)
class UnavailableMetric:
    """A metric (or "*" for a whole device) the machine cannot give, and why."""

    name: str
    device: str
    reason: str

    def to_dict(self) -> dict:
        return {"name": self.name, "device": self.device, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict) -> UnavailableMetric:
        return cls(name=str(data["name"]), device=str(data["device"]), reason=str(data["reason"]))


@dataclass
class SourceCapabilities:
    """The answer of `TelemetrySource.open()`: what this source will produce on this machine."""

    source: str
    metrics: list[MetricSpec] = field(default_factory=list)
    unavailable: list[UnavailableMetric] = field(default_factory=list)
    live: bool = True  # False for replayed data, which the UI must never show as live

    @property
    def available(self) -> bool:
        return bool(self.metrics)
