"""Finding the stretches of a run where a device ran slower than it could because of heat or power.

Three independent checks, each on sampled telemetry:
- NVML clock event reasons with a thermal or power-cap bit set (the driver says so);
- the clock more than 10% below the highest clock seen earlier in the window, while the
  device is busy and its temperature is higher than at that peak or within 5 degC of its
  slowdown limit (the symptom, for devices or drivers that do not report reasons);
- the CPU frequency more than 10% below its loaded peak while the CPU has been loaded for a
  sustained second (frequency drops at idle are power saving, not throttling).
A flagged sample stands for the time until the next sample. Intervals of one device overlapping
across checks are merged into one event that lists every cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from profilers import metrics
from profilers.metrics import MetricSpec
from profilers.nvml_reasons import THROTTLE_REASON_MASK, throttle_reasons
from profilers.ring_buffer import MetricSeries

CLOCK_DROP_FRACTION = 0.10
NEAR_LIMIT_C = 5.0
BUSY_UTILISATION = 50.0  # % below which a GPU clock drop is the GPU idling, not throttling
CPU_LOAD_UTILISATION = 80.0
CPU_SUSTAINED_NS = 1_000_000_000
GPU_IDLE_BIT = 0x1


@dataclass(frozen=True)
class ThrottleEvent:
    device: str
    start_ns: int
    end_ns: int
    causes: tuple[str, ...]  # "nvml:SwThermal", "clock_drop", "cpu_frequency_drop", ...

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class ThrottleSummary:
    events: list[ThrottleEvent]
    duration_s: float  # union of all events, so overlapping devices are not counted twice
    latency_samples_inside: int | None  # None when no latency timestamps were given
    latency_samples_total: int | None
    checks: dict[str, list[str]] = field(default_factory=dict)  # device -> checks that ran
    not_checked: dict[str, str] = field(default_factory=dict)  # device -> why no check could run

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def throttled(self) -> bool:
        return bool(self.events)

    @property
    def share_of_latency_samples(self) -> float | None:
        if not self.latency_samples_total:
            return None
        return self.latency_samples_inside / self.latency_samples_total


def _intervals_from_flags(t_ns: np.ndarray, flags: np.ndarray, causes: list[tuple[str, ...]], end_ns: int
                          ) -> list[tuple[int, int, tuple[str, ...]]]:
    """Runs of flagged samples become [first flagged t, next sample t); the last one lasts one median gap."""
    if len(t_ns) == 0:
        return []
    gap = int(np.median(np.diff(t_ns))) if len(t_ns) > 1 else 0
    intervals = []
    index = 0
    while index < len(t_ns):
        if not flags[index]:
            index += 1
            continue
        first, names = index, set()
        while index < len(t_ns) and flags[index]:
            names.update(causes[index])
            index += 1
        stop = int(t_ns[index]) if index < len(t_ns) else min(int(t_ns[-1]) + gap, end_ns)
        if stop > int(t_ns[first]):
            intervals.append((int(t_ns[first]), stop, tuple(sorted(names))))
    return intervals


def _at(series: MetricSeries | None, t_ns: np.ndarray) -> np.ndarray | None:
    """The latest value at or before each time (sample-and-hold), NaN before the first sample."""
    if series is None or len(series) == 0:
        return None
    index = np.searchsorted(series.t_ns, t_ns, side="right") - 1
    values = series.values[np.clip(index, 0, None)].astype(np.float64)
    values[index < 0] = np.nan
    return values


def nvml_reason_intervals(reasons: MetricSeries, end_ns: int) -> list[tuple[int, int, tuple[str, ...]]]:
    masks = reasons.values.astype(np.int64)
    flags = (masks & THROTTLE_REASON_MASK) != 0
    causes = [tuple(f"nvml:{name}" for name in throttle_reasons(int(mask))) for mask in masks]
    return _intervals_from_flags(reasons.t_ns, flags, causes, end_ns)


def clock_drop_intervals(clock: MetricSeries, temperature: MetricSeries, end_ns: int,
                         limit: MetricSeries | None = None, utilisation: MetricSeries | None = None,
                         reasons: MetricSeries | None = None) -> list[tuple[int, int, tuple[str, ...]]]:
    if len(clock) == 0:
        return []
    t = clock.t_ns
    temp = _at(temperature, t)
    limit_c = _at(limit, t)
    busy = _at(utilisation, t)
    mask = _at(reasons, t)
    peak_index = np.zeros(len(t), dtype=np.int64)  # index of the highest clock up to each sample
    for i in range(1, len(t)):
        peak_index[i] = i if clock.values[i] > clock.values[peak_index[i - 1]] else peak_index[i - 1]
    dropped = clock.values < (1.0 - CLOCK_DROP_FRACTION) * clock.values[peak_index]
    with np.errstate(invalid="ignore"):
        hotter = temp > temp[peak_index]
        near_limit = (temp >= limit_c - NEAR_LIMIT_C) if limit_c is not None else np.zeros(len(t), dtype=bool)
        flags = dropped & (hotter | near_limit)
        if busy is not None:
            flags &= ~(busy < BUSY_UTILISATION)
        if mask is not None:
            flags &= ~((np.nan_to_num(mask).astype(np.int64) & GPU_IDLE_BIT) != 0)
    return _intervals_from_flags(t, flags, [("clock_drop",)] * len(t), end_ns)


def cpu_frequency_intervals(frequency: MetricSeries, load: MetricSeries, end_ns: int
                            ) -> list[tuple[int, int, tuple[str, ...]]]:
    if len(frequency) == 0 or len(load) == 0:
        return []
    t = frequency.t_ns
    loaded_sample = load.values >= CPU_LOAD_UTILISATION
    # Sustained: every load sample within the preceding second (and at least one a second back) is loaded.
    sustained = np.zeros(len(t), dtype=bool)
    for i, now in enumerate(t):
        first = np.searchsorted(load.t_ns, now - CPU_SUSTAINED_NS, side="left")
        last = np.searchsorted(load.t_ns, now, side="right")
        recent = loaded_sample[first:last]
        sustained[i] = first > 0 and len(recent) > 0 and bool(recent.all()) and bool(loaded_sample[first - 1])
    peak = np.maximum.accumulate(np.where(sustained, frequency.values, 0.0))
    flags = sustained & (frequency.values < (1.0 - CLOCK_DROP_FRACTION) * peak)
    return _intervals_from_flags(t, flags, [("cpu_frequency_drop",)] * len(t), end_ns)


def _merge(device: str, intervals: list[tuple[int, int, tuple[str, ...]]]) -> list[ThrottleEvent]:
    events: list[ThrottleEvent] = []
    for start, end, causes in sorted(intervals):
        if events and start <= events[-1].end_ns:
            last = events[-1]
            events[-1] = ThrottleEvent(device, last.start_ns, max(last.end_ns, end),
                                       tuple(sorted(set(last.causes) | set(causes))))
        else:
            events.append(ThrottleEvent(device, start, end, causes))
    return events


def _union_duration_ns(events: Sequence[ThrottleEvent]) -> int:
    total, reach = 0, None
    for event in sorted(events, key=lambda e: e.start_ns):
        if reach is None or event.start_ns > reach:
            total += event.end_ns - event.start_ns
            reach = event.end_ns
        elif event.end_ns > reach:
            total += event.end_ns - reach
            reach = event.end_ns
    return total


def latency_samples_inside(events: Sequence[ThrottleEvent], timestamps_ns: np.ndarray) -> int:
    inside = np.zeros(len(timestamps_ns), dtype=bool)
    for event in events:
        inside |= (timestamps_ns >= event.start_ns) & (timestamps_ns < event.end_ns)
    return int(inside.sum())


def detect_throttling(specs: dict[str, MetricSpec], series: dict[str, MetricSeries], start_ns: int, end_ns: int,
                      latency_timestamps_ns: Sequence[int] | np.ndarray | None = None) -> ThrottleSummary:
    """Every throttle event inside [start_ns, end_ns] on every device the telemetry covers."""
    def window(key: str) -> MetricSeries | None:
        return series[key].window(start_ns, end_ns) if key in series and key in specs else None

    events: list[ThrottleEvent] = []
    checks: dict[str, list[str]] = {}
    not_checked: dict[str, str] = {}
    for device in sorted({spec.device for spec in specs.values()}):
        intervals: list[tuple[int, int, tuple[str, ...]]] = []
        ran: list[str] = []
        reasons = window(f"{device}/{metrics.CLOCK_EVENT_REASONS}")
        if reasons is not None:
            intervals += nvml_reason_intervals(reasons, end_ns)
            ran.append("nvml_clock_event_reasons")
        clock, temperature = window(f"{device}/{metrics.SM_CLOCK}"), window(f"{device}/{metrics.TEMPERATURE}")
        if clock is not None and temperature is not None:
            intervals += clock_drop_intervals(clock, temperature, end_ns,
                                              window(f"{device}/{metrics.TEMPERATURE_LIMIT}"),
                                              window(f"{device}/{metrics.UTILISATION}"), reasons)
            ran.append("clock_drop_while_hot")
        frequency = window(f"{device}/{metrics.FREQUENCY}")
        if frequency is not None:
            load = window(f"{device}/{metrics.UTILISATION}")
            process = window(f"process/{metrics.PROCESS_CPU}")
            if load is not None and process is not None and len(process) and len(load):
                # A single-threaded benchmark loads one core fully while the system average stays low.
                load = MetricSeries(load.t_ns, np.fmax(load.values, _at(process, load.t_ns)))
            if load is not None:
                intervals += cpu_frequency_intervals(frequency, load, end_ns)
                ran.append("cpu_frequency_drop_under_load")
        if ran:
            checks[device] = ran
            events += _merge(device, intervals)
        elif any(spec.device == device and spec.name in (metrics.SM_CLOCK, metrics.FREQUENCY, metrics.TEMPERATURE)
                 for spec in specs.values()):
            not_checked[device] = ("needs clock event reasons, or a clock with temperature, or CPU frequency with "
                                   "utilisation")
    inside = total = None
    if latency_timestamps_ns is not None:
        stamps = np.asarray(latency_timestamps_ns, dtype=np.int64)
        total, inside = len(stamps), latency_samples_inside(events, stamps)
    return ThrottleSummary(events=sorted(events, key=lambda e: (e.start_ns, e.device)),
                           duration_s=_union_duration_ns(events) / 1e9, latency_samples_inside=inside,
                           latency_samples_total=total, checks=checks, not_checked=not_checked)
