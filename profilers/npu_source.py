"""Intel NPU activity from the intel_vpu driver's sysfs attributes.

The driver exposes `npu_busy_time_us` (time the NPU spent executing submitted jobs) on the
accel device (`/sys/class/accel/accelN/device/`). Utilisation is derived from its deltas over
wall time; the current clock is reported where the driver has `npu_current_frequency_mhz`.
NPUs of other vendors (AMD XDNA, Qualcomm) expose no busy counter here and are reported
unavailable with that reason.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from profilers import metrics
from profilers.errors import DeviceLostError
from profilers.metrics import (
    MetricKind,
    MetricSpec,
    SourceCapabilities,
    UnavailableMetric,
)
from profilers.source import TelemetrySource
from profilers.sysfs import describe_os_error, read_int, sysfs_root

BUSY_ATTR = "npu_busy_time_us"
FREQUENCY_ATTR = "npu_current_frequency_mhz"


@dataclass
class _Npu:
    device: str
    busy_path: Path
    frequency_path: Path | None
    last_busy_us: int
    last_read_ns: int
    opened_busy_us: int = 0


def _driver_name(device_dir: Path) -> str:
    try:
        return os.path.basename(os.readlink(device_dir / "driver"))
    except OSError:
        return "unknown driver"


class NpuSource(TelemetrySource):
    name = "npu"

    def __init__(self, root: Path | None = None, clock=time.perf_counter_ns):
        self._root = root
        self._clock = clock
        self._npus: list[_Npu] = []

    def open(self) -> SourceCapabilities:
        caps = SourceCapabilities(self.name)
        self._npus = []
        accel = (self._root or sysfs_root()) / "class" / "accel"
        accel_dirs = sorted(accel.glob("accel[0-9]*"), key=lambda p: (len(p.name), p.name))
        if not accel_dirs:
            caps.unavailable.append(UnavailableMetric("*", "npu", f"no NPU found: {accel} has no accel devices "
                                                                   f"(no NPU, or its kernel driver is not loaded)"))
            return caps
        for accel_dir in accel_dirs:
            device = f"npu{accel_dir.name.removeprefix('accel')}"
            device_dir = accel_dir / "device"
            busy_path = device_dir / BUSY_ATTR
            if not busy_path.exists():
                caps.unavailable.append(UnavailableMetric(
                    metrics.UTILISATION, device,
                    f"{accel_dir.name} ({_driver_name(device_dir)}) exposes no {BUSY_ATTR}; only Intel NPUs with a "
                    f"recent intel_vpu driver report busy time"))
                continue
            try:
                busy = read_int(busy_path)
            except (OSError, ValueError) as error:
                reason = describe_os_error(error) if isinstance(error, OSError) else f"unexpected content ({error})"
                caps.unavailable.append(UnavailableMetric(metrics.UTILISATION, device, f"{busy_path} not readable: "
                                                                                       f"{reason}"))
                continue
            frequency_path = device_dir / FREQUENCY_ATTR
            if not _readable_int(frequency_path):
                caps.unavailable.append(UnavailableMetric("clock", device, f"{frequency_path} not present or not "
                                                                           f"readable"))
                frequency_path = None
            self._npus.append(_Npu(device, busy_path, frequency_path, busy, self._clock(), opened_busy_us=busy))
            caps.metrics.append(MetricSpec(metrics.BUSY_TIME, "s", device, MetricKind.MEASURED, cumulative=True,
                                           note=f"{BUSY_ATTR}, seconds since sampling started"))
            caps.metrics.append(MetricSpec(metrics.UTILISATION, "%", device, MetricKind.DERIVED,
                                           note="busy-time delta over wall time between samples"))
            if frequency_path is not None:
                caps.metrics.append(MetricSpec("clock", "MHz", device, MetricKind.MEASURED, note=FREQUENCY_ATTR))
        return caps

    def read(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for npu in self._npus:
            try:
                busy = read_int(npu.busy_path)
                frequency = read_int(npu.frequency_path) if npu.frequency_path is not None else None
            except (OSError, ValueError) as error:
                raise DeviceLostError(f"{npu.device}: {npu.busy_path} stopped being readable mid-run ({error}); "
                                      f"the NPU was reset or its driver unbound") from error
            now = self._clock()
            elapsed_us = (now - npu.last_read_ns) / 1000.0
            values[f"{npu.device}/{metrics.BUSY_TIME}"] = (busy - npu.opened_busy_us) / 1e6
            if elapsed_us > 0 and busy >= npu.last_busy_us:
                busy_share = (busy - npu.last_busy_us) / elapsed_us
                values[f"{npu.device}/{metrics.UTILISATION}"] = min(100.0, 100.0 * busy_share)
            if frequency is not None:
                values[f"{npu.device}/clock"] = float(frequency)
            npu.last_busy_us, npu.last_read_ns = busy, now
        return values

    def close(self) -> None:
        self._npus = []


def _readable_int(path: Path) -> bool:
    try:
        read_int(path)
    except (OSError, ValueError):
        return False
    return True
