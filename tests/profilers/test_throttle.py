"""Throttle detection on synthetic telemetry traces."""

from __future__ import annotations

import numpy as np
import pytest

from profilers import metrics
from profilers.metrics import MetricKind, MetricSpec
from profilers.nvml_reasons import decode_clock_event_reasons, throttle_reasons
from profilers.ring_buffer import MetricSeries
from profilers.run_summary import summarize_run
from profilers.throttle import detect_throttling

S = 1_000_000_000
MS = 1_000_000


def _specs(device: str, *names: str) -> dict[str, MetricSpec]:
    result = {}
    for name in names:
        spec = MetricSpec(name, "", "process" if name == metrics.PROCESS_CPU else device, MetricKind.MEASURED)
        result[spec.key] = spec
    return result


def _trace(values, period_ms: int = 100) -> MetricSeries:
    return MetricSeries.from_lists(np.arange(len(values)) * period_ms * MS, values)


def test_reason_decoding():
    # execute / assert
    assert decode_clock_event_reasons(0) == []
    assert decode_clock_event_reasons(0x24) == ["SwPowerCap", "SwThermal"]
    assert decode_clock_event_reasons(0x1 | 0x8 | 0x40 | 0x80) == ["GpuIdle", "HwSlowdown", "HwThermal", "HwPowerBrake"]
    assert decode_clock_event_reasons(0x800) == ["0x800"]
    assert throttle_reasons(0x1 | 0x2 | 0x10) == []
    with pytest.raises(ValueError):
        decode_clock_event_reasons(-1)


def test_nvml_reasons_become_merged_events():
    # setup: 10 clean samples, 5 SwThermal, 3 SwPowerCap, 1 clean, 2 idle (not throttling), 1 HwPowerBrake
    reasons = [0] * 10 + [0x20] * 5 + [0x4] * 3 + [0] + [0x1] * 2 + [0x80]
    specs = _specs("gpu0", metrics.CLOCK_EVENT_REASONS)
    # execute
    summary = detect_throttling(specs, {"gpu0/clock_event_reasons": _trace(reasons)}, 0, 3 * S)
    # assert
    assert summary.count == 2
    first, second = summary.events
    assert (first.start_ns, first.end_ns) == (1000 * MS, 1800 * MS)
    assert first.causes == ("nvml:SwPowerCap", "nvml:SwThermal")
    assert second.causes == ("nvml:HwPowerBrake",)
    assert (second.start_ns, second.end_ns) == (2100 * MS, 2200 * MS)  # the last sample lasts one sample gap
    assert summary.duration_s == pytest.approx(0.9)
    assert summary.throttled and summary.checks == {"gpu0": ["nvml_clock_event_reasons"]}


def _clock_case(clock, temperature, limit=None, utilisation=None):
    names = [metrics.SM_CLOCK, metrics.TEMPERATURE]
    series = {"gpu0/sm_clock": _trace(clock), "gpu0/temperature": _trace(temperature)}
    if limit is not None:
        names.append(metrics.TEMPERATURE_LIMIT)
        series["gpu0/temperature_limit"] = _trace([limit] * len(clock))
    if utilisation is not None:
        names.append(metrics.UTILISATION)
        series["gpu0/utilisation"] = _trace(utilisation)
    return detect_throttling(_specs("gpu0", *names), series, 0, 10 * S)


def test_clock_drop_while_temperature_rises_is_throttling():
    # execute
    summary = _clock_case([1980] * 10 + [1700] * 5 + [1980] * 5, list(range(60, 80)))
    # assert
    assert summary.count == 1
    assert summary.events[0].causes == ("clock_drop",)
    assert (summary.events[0].start_ns, summary.events[0].end_ns) == (1000 * MS, 1500 * MS)


def test_clock_drop_near_the_limit_with_flat_temperature_is_throttling():
    # execute
    summary = _clock_case([1980] * 10 + [1600] * 5, [85] * 15, limit=87)
    # assert
    assert summary.count == 1


def test_clock_drops_that_are_not_throttling():
    # execute
    cooling = _clock_case([1980] * 10 + [1700] * 5, list(range(80, 65, -1)), limit=90)
    small = _clock_case([1980] * 10 + [1800] * 5, list(range(60, 75)))  # 9% lower
    idle = _clock_case([1980] * 10 + [345] * 5, list(range(60, 75)), utilisation=[99] * 10 + [0] * 5)
    # assert
    assert cooling.count == small.count == idle.count == 0


def test_cpu_frequency_drop_under_sustained_load():
    # setup: 3 s fully loaded at 3.0 GHz, then 1 s at 2.5 GHz still loaded, then idle at 1.2 GHz
    utilisation = [100.0] * 40 + [3.0] * 10
    frequency = [3000.0] * 30 + [2500.0] * 10 + [1200.0] * 10
    specs = _specs("cpu", metrics.FREQUENCY, metrics.UTILISATION)
    series = {"cpu/frequency": _trace(frequency), "cpu/utilisation": _trace(utilisation)}
    # execute
    summary = detect_throttling(specs, series, 0, 5 * S)
    # assert
    assert summary.count == 1
    event = summary.events[0]
    assert event.causes == ("cpu_frequency_drop",)
    assert (event.start_ns, event.end_ns) == (3000 * MS, 4000 * MS)


def test_short_load_burst_is_not_sustained_but_a_busy_single_thread_is():
    # setup: system utilisation stays low; the process uses one full core for the whole trace
    frequency = [3000.0] * 20 + [2400.0] * 5
    low_system = [30.0] * 25
    burst = [30.0] * 15 + [100.0] * 10  # 1 s of load at most, preceded by idle
    specs = _specs("cpu", metrics.FREQUENCY, metrics.UTILISATION)
    # execute
    without_process = detect_throttling(specs, {"cpu/frequency": _trace(frequency), "cpu/utilisation": _trace(burst)},
                                         0, 3 * S)
    specs.update(_specs("cpu", metrics.PROCESS_CPU))
    with_process = detect_throttling(specs, {"cpu/frequency": _trace(frequency), "cpu/utilisation": _trace(low_system),
                                             "process/process_cpu": _trace([100.0] * 25)}, 0, 3 * S)
    # assert
    assert without_process.count == 0
    assert with_process.count == 1


def test_share_of_latency_samples_inside_events_and_run_summary_flag():
    # setup: throttled from 1.0 s to 2.0 s; latency samples every 10 ms over 0-4 s
    reasons = [0] * 10 + [0x40] * 10 + [0] * 20
    specs = _specs("gpu0", metrics.CLOCK_EVENT_REASONS, metrics.TEMPERATURE)
    series = {"gpu0/clock_event_reasons": _trace(reasons), "gpu0/temperature": _trace([60.0] * 40)}
    stamps = np.arange(0, 4 * S, 10 * MS)
    # execute
    summary = summarize_run(specs, series, 0, 4 * S, inferences=len(stamps), latency_timestamps_ns=stamps)
    # assert
    throttle = summary.throttle
    assert throttle.latency_samples_total == 400 and throttle.latency_samples_inside == 100
    assert throttle.share_of_latency_samples == pytest.approx(0.25)
    assert summary.throttled
    data = summary.to_dict()
    assert data["throttled"] and data["throttle"]["count"] == 1
    assert data["throttle"]["events"][0]["causes"] == ["nvml:HwThermal"]


def test_events_of_one_device_merge_across_checks():
    # setup: reasons flag 1.0-1.5 s, the clock drop 1.3-2.0 s
    n = 30
    specs = _specs("gpu0", metrics.CLOCK_EVENT_REASONS, metrics.SM_CLOCK, metrics.TEMPERATURE)
    series = {"gpu0/clock_event_reasons": _trace([0] * 10 + [0x4] * 5 + [0] * 15),
              "gpu0/sm_clock": _trace([1980] * 13 + [1600] * 7 + [1980] * 10),
              "gpu0/temperature": _trace(list(range(50, 50 + n)))}
    # execute
    summary = detect_throttling(specs, series, 0, 3 * S)
    # assert
    assert summary.count == 1
    assert summary.events[0].causes == ("clock_drop", "nvml:SwPowerCap")
    assert summary.duration_s == pytest.approx(1.0)
