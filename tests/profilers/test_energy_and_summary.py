"""Energy integration against known power curves, counter deltas, idle baseline and the run summary."""

from __future__ import annotations

import numpy as np
import pytest

from profilers import metrics
from profilers.energy import (
    EnergyMethod,
    counter_energy,
    counter_power,
    integrate_power,
    measure_idle_baseline,
)
from profilers.errors import SummaryInputError
from profilers.metrics import MetricKind, MetricSpec
from profilers.ring_buffer import MetricSeries
from profilers.run_summary import summarize_run

S = 1_000_000_000  # ns per second


def _series(t_s, values) -> MetricSeries:
    return MetricSeries.from_lists((np.asarray(t_s) * S).round().astype(np.int64), values)


def _gpu_specs(device: str = "gpu0") -> dict[str, MetricSpec]:
    specs = [MetricSpec(metrics.POWER, "W", device, MetricKind.MEASURED),
             MetricSpec(metrics.ENERGY, "J", device, MetricKind.MEASURED, cumulative=True, note="board energy"),
             MetricSpec(metrics.TEMPERATURE, "degC", device, MetricKind.MEASURED)]
    return {spec.key: spec for spec in specs}


def test_constant_and_linear_power_integrate_exactly():
    # setup
    t = np.arange(0, 10.01, 0.1)
    # execute
    constant = integrate_power(_series(t, np.full(len(t), 100.0)), 0, 2 * S)
    ramp = integrate_power(_series(t, 10.0 * t), 0, 10 * S)  # 0 -> 100 W over 10 s
    # assert
    assert constant.joules == pytest.approx(200.0)
    assert constant.method is EnergyMethod.INTEGRATED_POWER
    assert ramp.joules == pytest.approx(500.0)


def test_window_edges_between_samples_are_interpolated():
    # setup: 0 -> 100 W ramp sampled every 0.1 s
    t = np.arange(0, 10.01, 0.1)
    ramp = _series(t, 10.0 * t)
    # execute
    estimate = integrate_power(ramp, int(2.05 * S), int(4.55 * S))
    # assert: integral of 10 t dt from 2.05 to 4.55
    assert estimate.joules == pytest.approx(5 * (4.55**2 - 2.05**2))
    assert estimate.covered_s == pytest.approx(2.5)


def test_sinusoidal_power_over_whole_periods_integrates_to_the_mean():
    # setup: 150 W +- 50 W, period 2 s, sampled at 100 Hz for 10 s
    t = np.arange(0, 10.0001, 0.01)
    power = 150.0 + 50.0 * np.sin(2 * np.pi * t / 2.0)
    # execute
    estimate = integrate_power(_series(t, power), 0, 10 * S)
    # assert
    assert estimate.joules == pytest.approx(1500.0, rel=1e-3)


def test_counter_energy_and_counter_power():
    # setup: a counter rising at 250 W, sampled at 10 Hz
    t = np.arange(0, 5.01, 0.1)
    counter = _series(t, 1_000.0 + 250.0 * t)
    # execute
    energy = counter_energy(counter, int(1.25 * S), int(3.75 * S))
    power = counter_power(counter, 1 * S, 2 * S)
    # assert
    assert energy.joules == pytest.approx(625.0)
    assert energy.method is EnergyMethod.COUNTER
    assert np.allclose(power.values, 250.0)


def test_window_outside_the_samples_gives_no_estimate():
    # setup
    series = _series([0.0, 0.1, 0.2], [1.0, 2.0, 3.0])
    # execute / assert
    assert integrate_power(series, 5 * S, 6 * S) is None
    assert counter_energy(_series([0.0], [1.0]), 0, S) is None


def _gpu_run(power_w: float = 300.0, idle_w: float = 60.0, temperature=None):
    """2 s idle at idle_w, then 10 s at power_w; counter and power sampled at 10 Hz."""
    t = np.arange(0, 12.01, 0.1)
    power = np.where(t < 2.0, idle_w, power_w)
    energy = 5_000.0 + np.concatenate(([0.0], np.cumsum((power[1:] + power[:-1]) / 2 * np.diff(t))))
    temperature = np.linspace(40, 70, len(t)) if temperature is None else temperature
    return {"gpu0/power": _series(t, power), "gpu0/energy": _series(t, energy),
            "gpu0/temperature": _series(t, temperature)}


def test_run_summary_uses_the_counter_and_reports_efficiency():
    # setup
    series = _gpu_run()
    # execute
    summary = summarize_run(_gpu_specs(), series, 2 * S, 12 * S, inferences=1000, items=8000)
    # assert
    gpu = summary.devices["gpu0"]
    assert gpu.energy_method is EnergyMethod.COUNTER and gpu.energy_metric == "gpu0/energy"
    assert gpu.energy_covers == "board energy"
    assert gpu.energy_j == pytest.approx(3000.0, rel=1e-3)
    assert gpu.integrated_power_energy_j == pytest.approx(gpu.energy_j, rel=0.01)
    assert gpu.average_power_w == pytest.approx(300.0, rel=1e-3)
    assert gpu.peak_power_w == 300.0 and gpu.peak_power_from == "measured power samples"
    assert gpu.energy_per_inference_j == pytest.approx(3.0, rel=1e-3)
    assert gpu.inferences_per_joule == pytest.approx(1 / 3.0, rel=1e-3)
    assert gpu.items_per_watt == pytest.approx(800 / 300.0, rel=1e-3)  # 800 items/s at 300 W
    assert gpu.peak_temperature_c == pytest.approx(70.0)
    assert 55.0 < gpu.mean_temperature_c < 70.0
    assert not gpu.idle_subtracted and not summary.idle_requested
    assert summary.to_dict()["devices"]["gpu0"]["energy_method"] == "counter"


def test_idle_baseline_is_subtracted_and_stated():
    # setup
    series = _gpu_run()
    baseline = measure_idle_baseline(_gpu_specs(), series, 0, int(1.9 * S))
    # execute
    summary = summarize_run(_gpu_specs(), series, 2 * S, 12 * S, inferences=1000, idle_baseline=baseline)
    # assert
    gpu = summary.devices["gpu0"]
    assert baseline.power_w["gpu0"] == pytest.approx(60.0)
    assert gpu.idle_subtracted and gpu.idle_baseline_w == pytest.approx(60.0)
    assert gpu.gross_energy_j == pytest.approx(3000.0, rel=1e-3)
    assert gpu.energy_j == pytest.approx(2400.0, rel=1e-3)
    assert gpu.energy_per_inference_j == pytest.approx(2.4, rel=1e-3)
    assert any("idle baseline of 60.00 W" in note for note in gpu.notes)


def test_integrated_power_is_used_without_a_counter_and_says_so():
    # setup
    specs = {k: v for k, v in _gpu_specs().items() if v.name != metrics.ENERGY}
    series = {k: v for k, v in _gpu_run().items() if k != "gpu0/energy"}
    # execute
    gpu = summarize_run(specs, series, 2 * S, 12 * S, inferences=10).devices["gpu0"]
    # assert
    assert gpu.energy_method is EnergyMethod.INTEGRATED_POWER
    assert gpu.energy_j == pytest.approx(3000.0, rel=1e-3)
    assert gpu.integrated_power_energy_j is None


def test_rapl_style_derived_power_with_counter_reports_counter_peak():
    # setup: RAPL gives a counter and power derived from it
    specs = {"rapl:package-0/energy": MetricSpec(metrics.ENERGY, "J", "rapl:package-0", MetricKind.MEASURED,
                                                 cumulative=True),
             "rapl:package-0/power": MetricSpec(metrics.POWER, "W", "rapl:package-0", MetricKind.DERIVED)}
    t = np.arange(0, 4.01, 0.5)
    series = {"rapl:package-0/energy": _series(t, 20.0 * t), "rapl:package-0/power": _series(t, np.full(len(t), 20.0))}
    # execute
    package = summarize_run(specs, series, 0, 4 * S, inferences=4).devices["rapl:package-0"]
    # assert
    assert package.energy_method is EnergyMethod.COUNTER and package.energy_j == pytest.approx(80.0)
    assert package.integrated_power_energy_j is None  # derived from the same counter: no independent check
    assert package.peak_power_from == "derived power samples"
    assert "temperature_c" in package.unavailable


def test_partial_coverage_is_extrapolated_or_refused():
    # setup: samples only from 1 s to 12 s
    series = {k: v.window(1 * S, 12 * S) for k, v in _gpu_run(power_w=100.0, idle_w=100.0).items()}
    # execute
    mostly = summarize_run(_gpu_specs(), series, int(0.5 * S), 10 * S, inferences=10).devices["gpu0"]
    barely = summarize_run(_gpu_specs(), series, -20 * S, 2 * S, inferences=10).devices["gpu0"]
    # assert
    assert mostly.coverage == pytest.approx(9 / 9.5)
    assert mostly.energy_j == pytest.approx(950.0, rel=1e-3)
    assert any("extrapolated" in note for note in mostly.notes)
    assert barely.energy_j is None and "covers only" in barely.unavailable["energy_j"]
    assert barely.energy_per_inference_j is None and "energy_per_inference_j" in barely.unavailable


def test_bad_windows_and_counts_are_refused():
    # execute / assert
    with pytest.raises(SummaryInputError, match="end after it starts"):
        summarize_run(_gpu_specs(), _gpu_run(), 5 * S, 5 * S, inferences=1)
    with pytest.raises(SummaryInputError, match="at least one inference"):
        summarize_run(_gpu_specs(), _gpu_run(), 0, 5 * S, inferences=0)


def test_counter_reset_falls_back_to_integrated_power_and_says_so():
    # setup: the counter restarts from zero at 6 s (driver reloaded)
    series = _gpu_run()
    energy = series["gpu0/energy"]
    reset = np.where(energy.t_ns >= 6 * S, energy.values - energy.values[60], energy.values)
    series["gpu0/energy"] = MetricSeries(energy.t_ns, reset)
    # execute
    gpu = summarize_run(_gpu_specs(), series, 2 * S, 12 * S, inferences=10).devices["gpu0"]
    # assert
    assert gpu.energy_method is EnergyMethod.INTEGRATED_POWER
    assert gpu.energy_j == pytest.approx(3000.0, rel=1e-3)
    assert any("went backwards" in note for note in gpu.notes)


def test_peak_power_from_counter_deltas_without_a_power_metric():
    # setup: 100 W for 1 s then 400 W for 1 s, energy counter only
    specs = {k: v for k, v in _gpu_specs().items() if v.name == metrics.ENERGY}
    t = np.arange(0, 2.01, 0.1)
    energy = np.where(t <= 1.0, 100.0 * t, 100.0 + 400.0 * (t - 1.0))
    # execute
    gpu = summarize_run(specs, {"gpu0/energy": _series(t, energy)}, 0, 2 * S, inferences=5).devices["gpu0"]
    # assert
    assert gpu.energy_j == pytest.approx(500.0)
    assert gpu.peak_power_w == pytest.approx(400.0)
    assert gpu.peak_power_from == "energy counter deltas between samples"
    assert gpu.unavailable["temperature_c"] == "no temperature sensor for this device"
