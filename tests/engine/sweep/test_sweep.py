"""Sweeps: the grid, the seeded order, resuming, adaptive stopping per point, and what the analysis picks."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from engine.errors import DeviceUnavailableError, InputError, ShapeMismatchError
from engine.measure import adaptive_stopping as stopping_module
from engine.measure.adaptive_stopping import (
    StoppingRule,
    measure_until_stable,
    median_interval,
)
from engine.measure.prepared_session import ColdStart, PreparedSession
from engine.model.opening import load_model
from engine.sweep.analysis import (
    analyze_sweep,
    frontier,
    grid_tables,
    grid_text,
    most_efficient,
)
from engine.sweep.grid import (
    PointSummary,
    SweepGrid,
    SweepPoint,
    SweepSpec,
    pending_points,
    run_sweep,
)
from engine.sweep.points import measure_point, point_target, resolve_provider
from tests.conftest import linear_onnx

MS = 1_000_000


def _summary(batch: int, threads: int | None, throughput: float, p99: float, **extra) -> PointSummary:
    values = {"samples": 200, "items": 200 * batch, "percentiles_ms": {"p50": p99 / 2, "p90": p99 * 0.9,
                                                                      "p95": p99 * 0.95, "p99": p99},
              "throughput_per_s": throughput, **extra}
    return PointSummary(SweepPoint("cpu", None, batch, threads), "completed", **values)


# ---- grid, order, resume -------------------------------------------------------------------------------------


def test_the_grid_has_every_combination_with_stable_unique_keys():
    # setup
    grid = SweepGrid(batches=(1, 2, 4, 8), threads=(1, 2), providers=("cpu", "CUDAExecutionProvider"),
                     recipes=(None, "int8.json"))

    # execute
    points = grid.points()

    # assert
    assert len(points) == 4 * 2 * 2 * 2 == len({p.key for p in points})
    assert all(SweepPoint.from_key(p.key) == p for p in points)
    assert SweepPoint("cpu", None, 2, 1).key == '{"batch":2,"provider":"cpu","recipe":null,"threads":1}'


@pytest.mark.parametrize("grid", [dict(batches=()), dict(batches=(1, 1)), dict(batches=(0,)),
                                  dict(batches=(1,), threads=(0,))])
def test_bad_grids_are_refused(grid: dict):
    with pytest.raises(InputError):
        SweepGrid(**grid)


def test_the_order_is_a_seeded_shuffle_of_the_grid_and_round_trips_through_storage_values():
    # setup
    spec = SweepSpec(SweepGrid(batches=(1, 2, 4, 8), threads=(1, 2)), seed=42, latency_limit_ms=20.0)

    # execute
    order = spec.order()
    again = SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).order()
    other_seed = SweepSpec(spec.grid, seed=43).order()

    # assert
    assert sorted(p.key for p in order) == sorted(p.key for p in spec.grid.points())
    assert order == again
    assert order != spec.grid.points() and order != other_seed


def test_a_resumed_sweep_measures_only_the_points_not_done_in_the_same_order():
    # setup: the first session is interrupted during its fourth point
    spec = SweepSpec(SweepGrid(batches=(1, 2, 4, 8), threads=(1, 2)), seed=7)
    cancel = threading.Event()
    first_calls: list[SweepPoint] = []

    def interrupted(point, cancel_event, progress):
        first_calls.append(point)
        if len(first_calls) == 4:
            cancel_event.set()
            return PointSummary(point, "cancelled")
        return _summary(point.batch, point.threads, 100.0, 5.0)

    first = run_sweep(spec, interrupted, cancel=cancel)
    done = [s.key for s in first.measured if s.status == "completed"]
    second_calls: list[SweepPoint] = []

    def measure(point, cancel_event, progress):
        second_calls.append(point)
        return _summary(point.batch, point.threads, 100.0, 5.0)

    # execute
    second = run_sweep(spec, measure, completed_keys=done)

    # assert
    assert first.status == "cancelled" and len(done) == 3
    assert second.status == "completed" and set(second.skipped) == set(done)
    assert second_calls == pending_points(spec.order(), done)
    assert second_calls[0] == first_calls[3]  # the interrupted point is measured again
    assert {p.key for p in second_calls} | set(done) == {p.key for p in spec.grid.points()}


def test_a_point_the_engine_cannot_run_is_recorded_as_failed_and_the_sweep_goes_on():
    # setup
    spec = SweepSpec(SweepGrid(batches=(1,), providers=("cpu", "npu")), seed=0)
    seen: list[PointSummary] = []

    def measure(point, cancel, progress):
        if point.provider == "npu":
            raise DeviceUnavailableError("device 'npu' is unavailable: no NPU on this machine")
        return _summary(point.batch, point.threads, 50.0, 2.0)

    # execute
    result = run_sweep(spec, measure, on_point=seen.append)

    # assert
    failed = [s for s in result.measured if s.status == "failed"]
    assert len(result.measured) == 2 == len(seen) and len(failed) == 1
    assert "no NPU" in failed[0].error and failed[0].point.provider == "npu"
    assert analyze_sweep(result.measured).failed == tuple(failed)


def test_other_errors_stop_the_sweep():
    def measure(point, cancel, progress):
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_sweep(SweepSpec(SweepGrid(batches=(1, 2))), measure)


def test_a_point_summary_round_trips_through_plain_json():
    # setup
    summary = _summary(4, None, 321.0, 7.5, median_ci_ms=(3.7, 3.8), converged=True, stop_reason="ok",
                       energy_j=2.0, energy_source="RAPL package-0")

    # execute
    again = PointSummary.from_dict(json.loads(json.dumps(summary.to_dict())))

    # assert
    assert again == summary and again.items_per_joule == pytest.approx(800 / 2.0)


# ---- analysis ------------------------------------------------------------------------------------------------


def test_frontier_fastest_under_the_limit_and_grid_tables():
    # setup: (batch, threads) -> throughput, p99
    points = [_summary(1, 1, 100.0, 10.0), _summary(1, 2, 150.0, 7.0), _summary(2, 1, 180.0, 12.0),
              _summary(2, 2, 170.0, 15.0), _summary(4, 1, 300.0, 25.0), _summary(4, 2, 290.0, 26.0),
              PointSummary(SweepPoint("cpu", None, 8, 1), "failed", error="out of memory")]

    # execute
    analysis = analyze_sweep(points, latency_limit_ms=20.0)
    no_limit = analyze_sweep(points)
    too_tight = analyze_sweep(points, latency_limit_ms=5.0)
    table = grid_tables(points)[0]

    # assert: (1,1) is beaten by (1,2) on both; (2,2) by (2,1); (4,2) by (4,1)
    assert [(s.point.batch, s.point.threads) for s in frontier(points)] == [(1, 2), (2, 1), (4, 1)]
    assert (analysis.fastest.summary.point.batch, analysis.fastest.summary.point.threads) == (2, 1)
    assert "within 20 ms" in analysis.fastest.reason
    assert no_limit.fastest.summary.point.batch == 4
    assert too_tight.fastest.summary is None and "lowest was 7.000 ms" in too_tight.fastest.reason
    assert table.batches == (1, 2, 4, 8) and table.threads == (1, 2)
    assert table.values() == [[100.0, 150.0], [180.0, 170.0], [300.0, 290.0], [None, None]]
    assert "*" in grid_text(table, marks={analysis.fastest.summary.key: "*"})
    assert json.dumps(analysis.to_dict())


def test_the_most_energy_efficient_point_needs_measured_energy():
    # setup
    frugal = _summary(2, 1, 100.0, 5.0, energy_j=10.0, energy_source="RAPL package-0")
    hungry = _summary(4, 1, 200.0, 9.0, energy_j=40.0, energy_source="RAPL package-0")
    unknown = _summary(1, 1, 90.0, 4.0, energy_unavailable="RAPL needs root (CVE-2020-8694)")

    # execute
    chosen = most_efficient([frugal, hungry, unknown])
    none = most_efficient([unknown])

    # assert: 400 items / 10 J against 800 items / 40 J
    assert chosen.summary is frugal and chosen.reason.startswith("40.0 items per joule")
    assert none.summary is None and "RAPL needs root" in none.reason


# ---- adaptive stopping ---------------------------------------------------------------------------------------


def test_the_median_interval_brackets_the_median_with_order_statistics():
    # setup
    values = np.arange(1, 1001, dtype=np.int64)  # 1..1000

    # execute
    median, low, high = median_interval(values)

    # assert: n/2 ± 1.96·√n/2 ranks, about ±31 around 500
    assert median == 500.5 and 465 <= low < 500 < high <= 535
    assert median_interval(values[:10]) is None


class VirtualClock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def _prepared_with(latencies_ns, clock: VirtualClock) -> PreparedSession:
    sequence = iter(latencies_ns)

    def call():
        clock.now += next(sequence)

    class Session:
        description = {"runtime": "fake"}
        run_errors = (RuntimeError,)

    return PreparedSession(Session(), call, None, ColdStart(0.0, 0.0, 0.0))


def test_a_stable_point_stops_as_soon_as_its_median_is_pinned_down(monkeypatch):
    # setup
    clock = VirtualClock()
    monkeypatch.setattr(stopping_module, "perf_counter_ns", clock)
    rng = np.random.default_rng(0)
    latencies = (MS * rng.normal(1.0, 0.01, 100_000)).astype(np.int64)
    rule = StoppingRule(warmup=5, min_iterations=50, min_duration_s=0.0, max_duration_s=10.0)

    # execute
    run = measure_until_stable(_prepared_with(latencies, clock), rule)

    # assert
    assert run.converged and run.latencies_ns.size == 50 and "±2%" in run.stop_reason
    median, low, high = run.interval_ns
    assert low >= 0.98 * median and high <= 1.02 * median


def test_a_noisy_point_stops_at_the_time_cap_and_says_so(monkeypatch):
    # setup: half the iterations take 1 ms, half 3 ms: the median never settles
    clock = VirtualClock()
    monkeypatch.setattr(stopping_module, "perf_counter_ns", clock)
    latencies = np.tile([MS, 3 * MS], 100_000)
    rule = StoppingRule(warmup=0, min_iterations=50, min_duration_s=0.1, max_duration_s=1.0)

    # execute
    run = measure_until_stable(_prepared_with(latencies, clock), rule)

    # assert
    assert not run.converged and run.stop_reason.startswith("reached the time cap of 1 s")
    assert run.loop_end_ns - run.loop_start_ns >= 10**9 and run.latencies_ns.size == 500


def test_a_fixed_rule_stops_at_the_minimums(monkeypatch):
    # setup
    clock = VirtualClock()
    monkeypatch.setattr(stopping_module, "perf_counter_ns", clock)
    rule = StoppingRule(warmup=0, min_iterations=40, min_duration_s=0.02, ci_half_width=None)

    # execute
    run = measure_until_stable(_prepared_with(np.full(1000, MS), clock), rule)

    # assert: 40 iterations of 1 ms reach both 40 and 20 ms
    assert run.latencies_ns.size == 40 and run.stop_reason == "reached the minimum iterations and duration"


@pytest.mark.parametrize("rule", [dict(min_duration_s=5.0, max_duration_s=1.0), dict(ci_half_width=0.0),
                                  dict(confidence=1.0), dict(min_iterations=0)])
def test_bad_stopping_rules_are_refused(rule: dict):
    with pytest.raises(InputError):
        StoppingRule(**rule)


# ---- real points ---------------------------------------------------------------------------------------------


def test_a_small_real_sweep_on_onnxruntime(tmp_path):
    # setup
    handle = load_model(linear_onnx(tmp_path / "linear.onnx"))
    spec = SweepSpec(SweepGrid(batches=(1, 4), threads=(1,), providers=("CPUExecutionProvider",)), seed=1,
                     stopping=StoppingRule(warmup=2, min_iterations=30, min_duration_s=0.0, max_duration_s=0.3))

    def measure(point, cancel, progress):
        return measure_point(point_target(point, {None: handle}), spec.stopping, cancel=cancel,
                             progress=progress).summary

    # execute
    result = run_sweep(spec, measure)
    analysis = analyze_sweep(result.measured)

    # assert
    assert [s.status for s in result.measured] == ["completed", "completed"]
    assert all(s.samples >= 30 and s.items == s.samples * s.point.batch for s in result.measured)
    assert all(s.median_ci_ms[0] <= s.percentiles_ms["p50"] <= s.median_ci_ms[1] for s in result.measured)
    assert analysis.fastest.summary is not None


def test_point_targets_resolve_providers_recipes_and_batch(tmp_path):
    # setup
    flexible = load_model(linear_onnx(tmp_path / "flexible.onnx"))
    fixed = load_model(linear_onnx(tmp_path / "fixed.onnx", batch_dim=1))

    # execute
    target = point_target(SweepPoint("CPUExecutionProvider", "int8", 3, 2), {"int8": flexible})

    # assert
    assert target.device.id == "cpu" and target.runner.provider == "CPUExecutionProvider"
    assert target.options.threads == 2 and target.inputs.batch_size == 3
    assert resolve_provider("cpu", "onnxruntime")[0].id == "cpu"
    with pytest.raises(DeviceUnavailableError):
        resolve_provider("NoSuchExecutionProvider", "onnxruntime")
    with pytest.raises(InputError, match="no model was given for recipe"):
        point_target(SweepPoint("cpu", "missing", 1, None), {None: flexible})
    with pytest.raises((ShapeMismatchError, InputError)):
        point_target(SweepPoint("cpu", None, 2, None), {None: fixed})
