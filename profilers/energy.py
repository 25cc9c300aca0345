"""Energy over a time window, from counter deltas where a device has an energy counter and from
integrated power otherwise, and the idle baseline.

Counters (NVML total energy, RAPL) integrate in hardware at a far higher rate than any sampler,
so they are preferred; integrating sampled power misses what happens between samples (and NVML's
1 s averaged power lags). Window edges rarely fall on a sample, so values are interpolated
linearly between the samples around each edge; nothing is extrapolated here. The callers say
which method produced each joule and how much of the window the samples covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from profilers import metrics
from profilers.metrics import MetricSpec
from profilers.ring_buffer import MetricSeries


class EnergyMethod(str, Enum):
    COUNTER = "counter"  # difference of a cumulative hardware energy counter
    INTEGRATED_POWER = "integrated_power"  # trapezoidal integral of sampled power


@dataclass(frozen=True)
class EnergyEstimate:
    joules: float
    method: EnergyMethod
    metric: str  # key of the series it came from
    covered_start_ns: int
    covered_end_ns: int

    @property
    def covered_s(self) -> float:
        return (self.covered_end_ns - self.covered_start_ns) / 1e9


def _covered_span(series: MetricSeries, start_ns: int, end_ns: int) -> tuple[int, int] | None:
    if len(series) < 2 or end_ns <= start_ns:
        return None
    lo, hi = max(start_ns, int(series.t_ns[0])), min(end_ns, int(series.t_ns[-1]))
    return (lo, hi) if hi > lo else None


def _clipped(series: MetricSeries, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples strictly inside (lo, hi) plus values interpolated at lo and hi (both within the series)."""
    inner = (series.t_ns > lo) & (series.t_ns < hi)
    t = np.concatenate(([lo], series.t_ns[inner], [hi])).astype(np.float64)
    v = np.concatenate(([np.interp(lo, series.t_ns, series.values)], series.values[inner],
                        [np.interp(hi, series.t_ns, series.values)]))
    return t, v


def counter_energy(series: MetricSeries, start_ns: int, end_ns: int, key: str = "") -> EnergyEstimate | None:
    """Joules between the window edges from a cumulative counter in J (already wraparound-corrected)."""
    span = _covered_span(series, start_ns, end_ns)
    if span is None:
        return None
    lo, hi = span
    joules = float(np.interp(hi, series.t_ns, series.values) - np.interp(lo, series.t_ns, series.values))
    return EnergyEstimate(joules, EnergyMethod.COUNTER, key, lo, hi)


def integrate_power(series: MetricSeries, start_ns: int, end_ns: int, key: str = "") -> EnergyEstimate | None:
    """Joules from power samples in W: trapezoidal integral over the covered part of the window."""
    span = _covered_span(series, start_ns, end_ns)
    if span is None:
        return None
    t, v = _clipped(series, *span)
    joules = float(np.sum((v[1:] + v[:-1]) * 0.5 * np.diff(t)) / 1e9)
    return EnergyEstimate(joules, EnergyMethod.INTEGRATED_POWER, key, *span)


def counter_power(series: MetricSeries, start_ns: int, end_ns: int) -> MetricSeries:
    """Power (W) between consecutive counter samples inside the window, stamped at each interval's midpoint."""
    inside = series.window(start_ns, end_ns)
    if len(inside) < 2:
        return MetricSeries.from_lists([], [])
    dt = np.diff(inside.t_ns).astype(np.float64)
    keep = dt > 0
    watts = np.diff(inside.values)[keep] / (dt[keep] / 1e9)
    mid = (inside.t_ns[:-1][keep] + inside.t_ns[1:][keep]) // 2
    return MetricSeries(mid.astype(np.int64), watts)


def counter_was_reset(series: MetricSeries, start_ns: int, end_ns: int) -> bool:
    """True when the counter goes backwards around the window (driver reloaded, device reset).

    RAPL wraparound is corrected by its source, so any backward step left is a reset and the delta is void.
    """
    lo = max(0, int(np.searchsorted(series.t_ns, start_ns, side="right")) - 1)
    hi = int(np.searchsorted(series.t_ns, end_ns, side="left")) + 1
    return bool(np.any(np.diff(series.values[lo:hi]) < 0))


@dataclass(frozen=True)
class DeviceEnergy:
    counter: EnergyEstimate | None  # from the energy counter, when the device has one that covers the window
    integrated: EnergyEstimate | None  # from measured power (or derived power when there is no counter)
    notes: tuple[str, ...] = ()

    @property
    def best(self) -> EnergyEstimate | None:
        return self.counter or self.integrated


def device_energy(specs: dict[str, MetricSpec], series: dict[str, MetricSeries], device: str, start_ns: int,
                  end_ns: int) -> DeviceEnergy:
    """Counter and integrated-power estimates for one device; either may be None."""
    counter = integrated = None
    notes: list[str] = []
    energy_key, power_key = f"{device}/{metrics.ENERGY}", f"{device}/{metrics.POWER}"
    energy_spec = specs.get(energy_key)
    if energy_spec is not None and energy_spec.cumulative and energy_key in series:
        if counter_was_reset(series[energy_key], start_ns, end_ns):
            notes.append(f"{energy_key} went backwards inside the window (driver reload or device reset); "
                         f"its delta is not used")
        else:
            counter = counter_energy(series[energy_key], start_ns, end_ns, energy_key)
    power_spec = specs.get(power_key)
    # Power derived from the same counter (RAPL) adds nothing independent; integrate it only without a counter.
    power_is_independent = power_spec is not None and power_spec.kind is metrics.MetricKind.MEASURED
    if power_spec is not None and power_key in series and (counter is None or power_is_independent):
        integrated = integrate_power(series[power_key], start_ns, end_ns, power_key)
    return DeviceEnergy(counter, integrated, tuple(notes))


@dataclass(frozen=True)
class IdleBaseline:
    """Mean power per device over a quiet stretch before the run, subtracted from run energy when asked."""

    power_w: dict[str, float]
    method: dict[str, EnergyMethod]
    start_ns: int
    end_ns: int

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def measure_idle_baseline(specs: dict[str, MetricSpec], series: dict[str, MetricSeries], start_ns: int,
                          end_ns: int) -> IdleBaseline:
    """Mean power of every device with energy or power metrics over [start_ns, end_ns]."""
    power_w: dict[str, float] = {}
    method: dict[str, EnergyMethod] = {}
    for device in sorted({spec.device for spec in specs.values() if spec.name in (metrics.ENERGY, metrics.POWER)}):
        estimate = device_energy(specs, series, device, start_ns, end_ns).best
        if estimate is not None and estimate.covered_s > 0:
            power_w[device] = estimate.joules / estimate.covered_s
            method[device] = estimate.method
    return IdleBaseline(power_w, method, start_ns, end_ns)
