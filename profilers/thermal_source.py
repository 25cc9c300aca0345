"""Temperatures from hwmon (through `psutil.sensors_temperatures`) and from `/sys/class/thermal`.

Besides one metric per sensor (device "thermal"), the hottest CPU package/die sensor is also
published as `cpu/temperature`, so the run summary and the throttle check find a CPU temperature
under the same name as a GPU's. psutil reads hwmon from the real `/sys`; when AUTOGLM_SYSFS_ROOT
points elsewhere it is skipped (and says so), so a fake or mounted tree is never mixed with the
host's sensors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from profilers import metrics
from profilers.errors import SourceReadError
from profilers.metrics import (
    MetricKind,
    MetricSpec,
    SourceCapabilities,
    UnavailableMetric,
)
from profilers.source import TelemetrySource
from profilers.sysfs import (
    describe_os_error,
    read_int,
    read_text,
    sysfs_root,
    sysfs_root_is_default,
)

# hwmon chips that measure the CPU itself (Intel, AMD, Raspberry Pi / ARM SoCs).
CPU_CHIPS = frozenset({"coretemp", "k10temp", "zenpower", "cpu_thermal", "soc_thermal"})
NO_SENSORS_REASON = "no thermal sensors exposed by this kernel (no hwmon temperatures, no /sys/class/thermal zones)"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()).strip("_") or "sensor"


@dataclass
class _HwmonSensor:
    key: str
    chip: str
    index: int  # position in psutil's list for this chip, stable for one boot
    is_cpu: bool


@dataclass
class _Zone:
    key: str
    temp_path: Path


class ThermalSource(TelemetrySource):
    name = "thermal"

    def __init__(self, root: Path | None = None,
                 sensors_temperatures: Callable[[], dict] | None = None):
        self._root = root
        self._sensors_temperatures = sensors_temperatures or psutil.sensors_temperatures
        self._hwmon: list[_HwmonSensor] = []
        self._zones: list[_Zone] = []
        self._cpu_highs: list[float] = []
        self._cpu_temperature_limit: float | None = None

    def open(self) -> SourceCapabilities:
        caps = SourceCapabilities(self.name)
        self._hwmon, self._zones, self._cpu_highs, self._cpu_temperature_limit = [], [], [], None
        self._open_hwmon(caps)
        self._open_zones(caps)
        if any(sensor.is_cpu for sensor in self._hwmon):
            cpu_sensors = ", ".join(s.key.split("/", 1)[1] for s in self._hwmon if s.is_cpu)
            caps.metrics.append(MetricSpec(metrics.TEMPERATURE, "degC", "cpu", MetricKind.MEASURED,
                                           note=f"hottest CPU package/die sensor ({cpu_sensors})"))
            highs = [high for high in self._cpu_highs if high > 0]
            if highs:
                self._cpu_temperature_limit = min(highs)
                caps.metrics.append(MetricSpec(metrics.TEMPERATURE_LIMIT, "degC", "cpu", MetricKind.MEASURED,
                                               note="lowest 'high' threshold of the CPU sensors, read once"))
        if not caps.metrics:
            caps.unavailable.append(UnavailableMetric(metrics.TEMPERATURE, "thermal", NO_SENSORS_REASON))
        return caps

    def _open_hwmon(self, caps: SourceCapabilities) -> None:
        if not sysfs_root_is_default():
            caps.unavailable.append(UnavailableMetric(
                "hwmon", "thermal", "hwmon sensors skipped: psutil reads the real /sys while AUTOGLM_SYSFS_ROOT "
                                    "points elsewhere"))
            return
        try:
            chips = self._sensors_temperatures() or {}
        except (OSError, AttributeError, NotImplementedError) as error:  # AttributeError: not on this platform
            caps.unavailable.append(UnavailableMetric("hwmon", "thermal",
                                                      f"psutil cannot read temperatures here ({error})"))
            return
        for chip, readings in sorted(chips.items()):
            for index, reading in enumerate(readings):
                label = reading.label or f"temp{index + 1}"
                key = f"thermal/{_slug(chip)}:{_slug(label)}"
                if any(sensor.key == key for sensor in self._hwmon):
                    key = f"{key}#{index}"
                is_cpu = chip in CPU_CHIPS
                self._hwmon.append(_HwmonSensor(key, chip, index, is_cpu))
                caps.metrics.append(MetricSpec(key.split("/", 1)[1], "degC", "thermal", MetricKind.MEASURED,
                                               note=f"hwmon {chip} {label}"))
                if is_cpu and reading.high:
                    self._cpu_highs.append(float(reading.high))

    def _open_zones(self, caps: SourceCapabilities) -> None:
        thermal = (self._root or sysfs_root()) / "class" / "thermal"
        for zone_dir in sorted(thermal.glob("thermal_zone*"), key=lambda p: (len(p.name), p.name)):
            try:
                kind = read_text(zone_dir / "type")
            except OSError:
                kind = "unknown"
            name = f"{zone_dir.name}:{_slug(kind)}"
            try:
                read_int(zone_dir / "temp")
            except (OSError, ValueError) as error:
                reason = describe_os_error(error) if isinstance(error, OSError) else f"unexpected content ({error})"
                caps.unavailable.append(UnavailableMetric(name, "thermal",
                                                          f"{zone_dir / 'temp'} not readable: {reason}"))
                continue
            self._zones.append(_Zone(f"thermal/{name}", zone_dir / "temp"))
            caps.metrics.append(MetricSpec(name, "degC", "thermal", MetricKind.MEASURED,
                                           note=f"/sys/class/thermal {zone_dir.name} ({kind})"))

    def read(self) -> dict[str, float]:
        values: dict[str, float] = {}
        if self._hwmon:
            chips = self._sensors_temperatures() or {}
            cpu_hottest = None
            for sensor in self._hwmon:
                readings = chips.get(sensor.chip, [])
                if sensor.index >= len(readings) or readings[sensor.index].current is None:
                    continue
                value = float(readings[sensor.index].current)
                values[sensor.key] = value
                if sensor.is_cpu:
                    cpu_hottest = value if cpu_hottest is None else max(cpu_hottest, value)
            if cpu_hottest is not None:
                values[f"cpu/{metrics.TEMPERATURE}"] = cpu_hottest
                if self._cpu_temperature_limit is not None:
                    values[f"cpu/{metrics.TEMPERATURE_LIMIT}"] = self._cpu_temperature_limit
        for zone in self._zones:
            try:
                values[zone.key] = read_int(zone.temp_path) / 1000.0  # millidegrees Celsius
            except (OSError, ValueError) as error:
                raise SourceReadError(f"{zone.temp_path} stopped being readable mid-run: {error}") from error
        return values

    def close(self) -> None:
        self._hwmon = []
        self._zones = []
