"""The telemetry part of a run result: energy, power, efficiency and temperature per device over the
timed loop, and the throttle events, computed from sampled series.

Works on a live sampler's snapshot or on series read back from storage, so a saved run can be
re-summarised. Every energy figure says whether it came from a counter or integrated power,
how much of the window the samples covered, and whether an idle baseline was subtracted.
A figure that cannot be computed is None with its reason in `unavailable`, never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum

import numpy as np

from profilers import metrics
from profilers.energy import EnergyMethod, IdleBaseline, counter_power, device_energy
from profilers.errors import SummaryInputError
from profilers.metrics import MetricSpec, UnavailableMetric
from profilers.ring_buffer import MetricSeries
from profilers.sampler import TelemetrySnapshot
from profilers.throttle import ThrottleSummary, detect_throttling

MIN_COVERAGE = 0.5  # below this share of the window, an energy figure would be mostly guesswork
SHORT_WINDOW_S = 1.0


@dataclass(frozen=True)
class DeviceRunSummary:
    device: str
    energy_j: float | None = None  # what the efficiency figures use: net of the idle baseline when subtracted
    energy_method: EnergyMethod | None = None
    energy_metric: str | None = None
    energy_covers: str = ""  # the metric note: what the counter or sensor measures
    gross_energy_j: float | None = None
    integrated_power_energy_j: float | None = None  # cross-check beside a counter figure
    coverage: float | None = None  # share of the window the samples spanned
    average_power_w: float | None = None  # gross
    peak_power_w: float | None = None
    peak_power_from: str = ""
    idle_baseline_w: float | None = None
    idle_subtracted: bool = False
    energy_per_inference_j: float | None = None
    inferences_per_joule: float | None = None
    items_per_watt: float | None = None  # items per second per watt (FPS/W, tokens/s/W)
    peak_temperature_c: float | None = None
    mean_temperature_c: float | None = None
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunTelemetrySummary:
    start_ns: int
    end_ns: int
    inferences: int
    items: int
    devices: dict[str, DeviceRunSummary]
    throttle: ThrottleSummary
    idle_requested: bool
    live: bool  # False when the telemetry was replayed from a file
    unavailable: list[UnavailableMetric] = field(default_factory=list)  # what the machine could not measure, and why

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def throttled(self) -> bool:
        return self.throttle.throttled

    def to_dict(self) -> dict:
        """JSON-ready (enums as their values), for the CLI's --json and the run record."""
        def plain(value):
            if isinstance(value, Enum):
                return value.value
            if isinstance(value, dict):
                return {key: plain(item) for key, item in value.items()}
            if isinstance(value, list | tuple):
                return [plain(item) for item in value]
            return value
        data = plain(asdict(self))
        data["duration_s"] = self.duration_s
        data["throttled"] = self.throttled
        data["throttle"]["count"] = self.throttle.count
        data["throttle"]["share_of_latency_samples"] = self.throttle.share_of_latency_samples
        return data


def _temperatures(series: MetricSeries | None) -> tuple[float | None, float | None, str]:
    if series is None:
        return None, None, "no temperature sensor for this device"
    if len(series) == 0:
        return None, None, "no temperature sample inside the window"
    return float(np.max(series.values)), float(np.mean(series.values)), ""


def _device_summary(specs: dict[str, MetricSpec], series: dict[str, MetricSeries], device: str, start_ns: int,
                    end_ns: int, inferences: int, items: int, baseline: IdleBaseline | None) -> DeviceRunSummary:
    window_s = (end_ns - start_ns) / 1e9
    unavailable: dict[str, str] = {}
    notes: list[str] = []
    out: dict = {}

    def inside(name: str) -> MetricSeries | None:
        key = f"{device}/{name}"
        return series[key].window(start_ns, end_ns) if key in series and key in specs else None

    energy_estimates = device_energy(specs, series, device, start_ns, end_ns)
    counter, integrated, estimate = energy_estimates.counter, energy_estimates.integrated, energy_estimates.best
    notes.extend(energy_estimates.notes)
    has_energy_metrics = any(f"{device}/{name}" in specs for name in (metrics.ENERGY, metrics.POWER))
    if estimate is None:
        unavailable["energy_j"] = ("fewer than two power or energy samples around the window" if has_energy_metrics
                                   else "no power or energy metric for this device")
    else:
        coverage = min(1.0, estimate.covered_s / window_s)
        out["coverage"] = coverage
        if coverage < MIN_COVERAGE:
            unavailable["energy_j"] = (f"telemetry covers only {coverage:.0%} of the window; start the sampler "
                                       f"before the timed loop and stop it after")
        else:
            gross = estimate.joules
            if coverage < 1.0:
                gross = estimate.joules / estimate.covered_s * window_s
                notes.append(f"samples cover {coverage:.1%} of the window; the uncovered edges "
                             f"({window_s - estimate.covered_s:.3f} s) are extrapolated at the covered mean power")
            if window_s < SHORT_WINDOW_S and estimate.method is EnergyMethod.COUNTER:
                notes.append("window shorter than 1 s: the counter's update interval can dominate the figure")
            out.update(gross_energy_j=gross, energy_j=gross, energy_method=estimate.method,
                       energy_metric=estimate.metric, energy_covers=specs[estimate.metric].note,
                       average_power_w=gross / window_s)
            if counter is not None and integrated is not None:
                out["integrated_power_energy_j"] = integrated.joules / integrated.covered_s * window_s

    power = inside(metrics.POWER)
    counter_watts = (counter_power(series[counter.metric], start_ns, end_ns) if counter is not None
                     else MetricSeries.from_lists([], []))
    if power is not None and len(power):
        out["peak_power_w"] = float(np.max(power.values))
        out["peak_power_from"] = f"{specs[f'{device}/{metrics.POWER}'].kind.value} power samples"
    elif len(counter_watts):
        out["peak_power_w"] = float(np.max(counter_watts.values))
        out["peak_power_from"] = "energy counter deltas between samples"
    else:
        unavailable["peak_power_w"] = "no power sample inside the window"

    if baseline is not None:
        idle_w = baseline.power_w.get(device)
        if idle_w is None:
            notes.append("no idle baseline was measured for this device; nothing subtracted")
        elif "energy_j" in out:
            out.update(idle_baseline_w=idle_w, idle_subtracted=True, energy_j=out["gross_energy_j"] - idle_w * window_s)
            notes.append(f"idle baseline of {idle_w:.2f} W ({baseline.method[device].value}, measured over "
                         f"{baseline.duration_s:.1f} s before the run) subtracted")

    energy = out.get("energy_j")
    if energy is not None and energy > 0:
        out.update(energy_per_inference_j=energy / inferences, inferences_per_joule=inferences / energy,
                   items_per_watt=(items / window_s) / (energy / window_s))
    elif energy is not None:
        reason = "the run used no measurable energy above the idle baseline"
        for name in ("energy_per_inference_j", "inferences_per_joule", "items_per_watt"):
            unavailable[name] = reason
    else:
        for name in ("energy_per_inference_j", "inferences_per_joule", "items_per_watt"):
            unavailable[name] = "no energy figure for this device"

    peak_c, mean_c, reason = _temperatures(inside(metrics.TEMPERATURE))
    if reason:
        unavailable["temperature_c"] = reason
    return DeviceRunSummary(device, peak_temperature_c=peak_c, mean_temperature_c=mean_c, unavailable=unavailable,
                            notes=notes, **out)


def summarize_run(specs: dict[str, MetricSpec], series: dict[str, MetricSeries], start_ns: int, end_ns: int,
                  inferences: int, *, items: int | None = None, idle_baseline: IdleBaseline | None = None,
                  latency_timestamps_ns: Sequence[int] | np.ndarray | None = None,
                  live: bool = True, unavailable: Sequence[UnavailableMetric] = ()) -> RunTelemetrySummary:
    """Summary of the window [start_ns, end_ns] (perf_counter_ns, e.g. the timed loop).

    `inferences` counts model calls in the window, `items` the images/tokens/samples they processed
    (default: one per inference). With `idle_baseline`, its mean power is subtracted from each
    device's energy before the efficiency figures. `latency_timestamps_ns` (the runner's sample
    start times) gives the share of latency samples taken while throttled.
    """
    if end_ns <= start_ns:
        raise SummaryInputError(f"the summary window must end after it starts (start {start_ns}, end {end_ns} ns)")
    if inferences <= 0:
        raise SummaryInputError(f"a run summary needs at least one inference in the window, got {inferences}")
    items = inferences if items is None else int(items)
    if items < 0:
        raise SummaryInputError(f"items processed cannot be negative, got {items}")
    summary_names = (metrics.ENERGY, metrics.POWER, metrics.TEMPERATURE)
    devices = sorted({spec.device for spec in specs.values() if spec.name in summary_names})
    device_summaries = {device: _device_summary(specs, series, device, start_ns, end_ns, inferences, items,
                                                idle_baseline) for device in devices}
    throttle = detect_throttling(specs, series, start_ns, end_ns, latency_timestamps_ns)
    return RunTelemetrySummary(start_ns, end_ns, inferences, items, device_summaries, throttle,
                               idle_requested=idle_baseline is not None, live=live, unavailable=list(unavailable))


def summarize_snapshot(snapshot: TelemetrySnapshot, start_ns: int, end_ns: int, inferences: int,
                       **options) -> RunTelemetrySummary:
    """`summarize_run` on a sampler snapshot; replayed telemetry is marked not live."""
    return summarize_run(snapshot.specs, snapshot.series, start_ns, end_ns, inferences, live=snapshot.live,
                         unavailable=snapshot.unavailable, **options)
