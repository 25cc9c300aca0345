"""CPU package / DRAM energy from the Linux powercap RAPL interface.

`/sys/class/powercap/intel-rapl:N[:M]/energy_uj` is a hardware energy counter in microjoules
(Intel and AMD both expose it under the intel-rapl name). It wraps at `max_energy_range_uj`,
which tools that subtract raw readings get wrong (codecarbon#322): here each read adds the
wrapped-around delta to a running total, so the `energy` metric is a monotonic count of joules
since `open`. Since CVE-2020-8694 the counter is readable by root only; a udev rule that
chgrp's it to a group the user is in is the documented workaround (see the README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from profilers import metrics
from profilers.errors import SourceReadError
from profilers.metrics import (
    MetricKind,
    MetricSpec,
    SourceCapabilities,
    UnavailableMetric,
)
from profilers.source import TelemetrySource
from profilers.sysfs import describe_os_error, read_int, read_text, sysfs_root

PERMISSION_REASON = "RAPL energy_uj not readable: permission denied, see README for the udev rule"


@dataclass
class _Zone:
    device: str
    energy_path: Path
    max_range_uj: int
    last_raw_uj: int
    total_uj: int = 0
    last_read_ns: int = 0
    wraps: int = 0

    def advance(self, raw_uj: int) -> int:
        """Add the delta since the last read (correcting one wraparound) and return it in microjoules."""
        if raw_uj >= self.last_raw_uj:
            delta = raw_uj - self.last_raw_uj
        else:
            delta = raw_uj + self.max_range_uj - self.last_raw_uj
            self.wraps += 1
        self.last_raw_uj = raw_uj
        self.total_uj += delta
        return delta


def _zone_device(zone_dir: Path, names: dict[str, str]) -> str:
    """`rapl:package-0` for a top zone, `rapl:package-0:dram` for a subzone (its parent is `intel-rapl:0`)."""
    name = names[zone_dir.name]
    parts = zone_dir.name.split(":")
    if len(parts) > 2:
        parent = names.get(":".join(parts[:2]), ":".join(parts[:2]))
        return f"rapl:{parent}:{name}"
    return f"rapl:{name}"


class RaplSource(TelemetrySource):
    """Energy counters and the power derived from them, for every readable RAPL zone."""

    name = "rapl"

    def __init__(self, root: Path | None = None, clock=time.perf_counter_ns):
        self._root = root
        self._clock = clock
        self._zones: list[_Zone] = []

    def open(self) -> SourceCapabilities:
        powercap = (self._root or sysfs_root()) / "class" / "powercap"
        caps = SourceCapabilities(self.name)
        zone_dirs = sorted(p for p in powercap.glob("intel-rapl:*") if p.is_dir())
        if not zone_dirs:
            reason = (f"no RAPL zones under {powercap} (not an Intel/AMD CPU with the intel_rapl driver loaded, "
                      f"or /sys not mounted here; set AUTOGLM_SYSFS_ROOT to a host /sys)")
            caps.unavailable.append(UnavailableMetric(metrics.ENERGY, "rapl", reason))
            return caps
        names = {}
        for zone_dir in zone_dirs:
            try:
                names[zone_dir.name] = read_text(zone_dir / "name")
            except OSError:
                names[zone_dir.name] = zone_dir.name
        for zone_dir in zone_dirs:
            device = _zone_device(zone_dir, names)
            zone, reason = self._open_zone(zone_dir, device)
            if zone is None:
                caps.unavailable.append(UnavailableMetric(metrics.ENERGY, device, reason))
                caps.unavailable.append(UnavailableMetric(metrics.POWER, device, reason))
                continue
            self._zones.append(zone)
            caps.metrics.append(MetricSpec(metrics.ENERGY, "J", device, MetricKind.MEASURED, cumulative=True,
                                           note="RAPL counter, joules since sampling started, wraparound corrected"))
            caps.metrics.append(MetricSpec(metrics.POWER, "W", device, MetricKind.DERIVED,
                                           note="from RAPL energy deltas between consecutive samples"))
        return caps

    def _open_zone(self, zone_dir: Path, device: str) -> tuple[_Zone | None, str]:
        try:
            raw = read_int(zone_dir / "energy_uj")
        except PermissionError:
            return None, PERMISSION_REASON
        except (OSError, ValueError) as error:
            return None, f"RAPL {zone_dir.name}/energy_uj not readable: {_describe(error)}"
        try:
            max_range = read_int(zone_dir / "max_energy_range_uj")
        except (OSError, ValueError) as error:
            return None, (f"RAPL {zone_dir.name}/max_energy_range_uj not readable ({_describe(error)}), so "
                          f"counter wraparound cannot be corrected")
        if max_range <= 0:
            return None, f"RAPL {zone_dir.name}/max_energy_range_uj is {max_range}, so wraparound cannot be corrected"
        return _Zone(device, zone_dir / "energy_uj", max_range, raw, last_read_ns=self._clock()), ""

    def read(self) -> dict[str, float]:
        raws = []
        for zone in self._zones:
            try:
                raws.append(read_int(zone.energy_path))
            except (OSError, ValueError) as error:
                raise SourceReadError(f"RAPL {zone.energy_path} stopped being readable mid-run: "
                                      f"{_describe(error)}") from error
        now = self._clock()  # one timestamp for all zones: they are read back to back
        values: dict[str, float] = {}
        for zone, raw in zip(self._zones, raws, strict=True):
            delta_uj = zone.advance(raw)
            elapsed_ns = now - zone.last_read_ns
            zone.last_read_ns = now
            values[f"{zone.device}/{metrics.ENERGY}"] = zone.total_uj / 1e6
            if elapsed_ns > 0:
                values[f"{zone.device}/{metrics.POWER}"] = delta_uj / 1e6 / (elapsed_ns / 1e9)
        return values

    @property
    def wraparounds(self) -> dict[str, int]:
        """How many times each zone's counter wrapped since open (shown in diagnostics, checked in tests)."""
        return {zone.device: zone.wraps for zone in self._zones}

    def close(self) -> None:
        self._zones = []


def _describe(error: Exception) -> str:
    return describe_os_error(error) if isinstance(error, OSError) else f"unexpected content ({error})"
