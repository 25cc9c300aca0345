"""Load scenarios: the Poisson schedule, coordinated-omission correction, LoadGen validity, the max-rate search.

Most tests run on a virtual clock: the session advances it by a fixed service time per call and waiting jumps
it to the deadline, so every latency is known exactly and nothing depends on the machine's speed.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine.backends import BackendOptions, get_backend
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError, InputError
from engine.measure import max_rate as max_rate_module
from engine.measure import runner as runner_module
from engine.measure import scenarios as scenarios_module
from engine.measure.max_rate import find_max_rate
from engine.measure.prepared_session import ColdStart, PreparedSession, prepared_session
from engine.measure.samples import SampleBuffer
from engine.measure.scenarios import (
    ScenarioSettings,
    judge_validity,
    poisson_arrivals,
    run_scenario,
)
from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.opening import load_model
from tests.engine.measure.virtual_clock import MS, VirtualClock, fixed_service


class FakeSession:
    description = {"runtime": "fake"}
    run_errors = (RuntimeError,)
    needs_sync = False

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass


def _prepared(call) -> PreparedSession:
    return PreparedSession(FakeSession(), call, None, ColdStart(0.0, 0.0, 0.0))


@pytest.fixture
def clock(monkeypatch) -> VirtualClock:
    virtual = VirtualClock()
    for module in (scenarios_module, max_rate_module, runner_module):  # the runner's loops serve single-stream
        monkeypatch.setattr(module, "perf_counter_ns", virtual)
    monkeypatch.setattr(scenarios_module, "wait_until", virtual.wait_until)
    return virtual


# ---- the arrival schedule ------------------------------------------------------------------------------------


def test_poisson_schedule_has_the_target_rate_and_exponential_gaps_for_a_fixed_seed():
    # execute
    offsets = poisson_arrivals(200.0, min_queries=4000, min_duration_s=0.0, seed=11)

    # assert
    gaps = np.diff(np.concatenate([[0], offsets])) / 1e9
    assert offsets.size == 4000 and np.all(gaps > 0)
    assert offsets.size / (offsets[-1] / 1e9) == pytest.approx(200.0, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential: CV 1 (Poisson process)
    assert np.mean(gaps < np.median(gaps)) == pytest.approx(0.5, abs=0.01)
    assert np.median(gaps) == pytest.approx(np.log(2) / 200.0, rel=0.06)


def test_the_same_seed_gives_the_same_bursts_scaled_to_the_rate():
    # execute
    slow = poisson_arrivals(100.0, min_queries=500, min_duration_s=0.0, seed=3)
    fast = poisson_arrivals(400.0, min_queries=500, min_duration_s=0.0, seed=3)
    other = poisson_arrivals(100.0, min_queries=500, min_duration_s=0.0, seed=4)

    # assert
    assert np.array_equal(slow, poisson_arrivals(100.0, min_queries=500, min_duration_s=0.0, seed=3))
    np.testing.assert_allclose(slow, fast * 4, atol=4)  # rounding to whole ns, times 4
    assert not np.array_equal(slow, other)


@pytest.mark.parametrize("min_queries, min_duration_s", [(10, 2.0), (600, 0.1)])
def test_the_schedule_meets_both_minimums(min_queries: int, min_duration_s: float):
    # execute
    offsets = poisson_arrivals(50.0, min_queries=min_queries, min_duration_s=min_duration_s, seed=0)

    # assert
    assert offsets.size >= min_queries and offsets[-1] >= min_duration_s * 1e9


# ---- coordinated omission ------------------------------------------------------------------------------------


def test_an_overloaded_server_charges_queueing_to_each_query_from_its_scheduled_arrival(clock: VirtualClock):
    # setup: 5 ms per query, arrivals at 400 per second (one every 2.5 ms on average): the queue grows
    settings = ScenarioSettings("server", min_duration_s=0.0, min_queries=200, warmup=0, target_qps=400.0,
                                latency_bound_ms=50.0, seed=5)
    samples = SampleBuffer()

    # execute
    result = run_scenario(_prepared(fixed_service(clock, 5 * MS)), 1, settings, samples=samples)

    # assert: latency = completion - scheduled arrival, the server taking queries in arrival order (Lindley)
    arrivals = result.starts_ns
    expected_end = np.empty_like(arrivals)
    free_at = 0
    for index, arrival in enumerate(arrivals):
        free_at = max(arrival, free_at) + 5 * MS
        expected_end[index] = free_at
    assert np.array_equal(result.latencies_ns, expected_end - arrivals)
    assert np.all(result.service_ns == 5 * MS)  # what a closed-loop timer would have reported
    assert result.queueing_ns.mean() > 20 * 5 * MS  # far beyond the service time: the queue is visible
    assert result.latency.percentiles_ms["p99"] > 50.0 and result.bound_held is False
    assert not result.validity.valid and any("exceeds the bound" in r for r in result.validity.reasons)
    starts, latencies = samples.snapshot()
    assert np.array_equal(latencies, result.latencies_ns) and np.array_equal(starts, arrivals)


def test_a_lightly_loaded_server_shows_no_queueing_and_holds_its_bound(clock: VirtualClock):
    # setup: 1 ms per query at 5 queries per second
    settings = ScenarioSettings("server", min_duration_s=2.0, min_queries=100, warmup=3, target_qps=5.0,
                                latency_bound_ms=2.0, seed=1)

    # execute
    result = run_scenario(_prepared(fixed_service(clock, MS)), 2, settings)

    # assert: almost every query finds the server idle; the few that arrive within 1 ms of another wait a little
    assert np.median(result.queueing_ns) == 0
    assert result.latency.percentiles_ms["p50"] == pytest.approx(1.0)
    assert result.validity.valid and result.validity.label == "VALID" and result.bound_held is True
    assert result.items == 2 * result.queries and result.headline()["target_qps"] == 5.0


def test_a_really_slow_model_shows_queueing_delay_in_real_time():
    # setup: a session that sleeps 4 ms per query, offered 500 queries per second
    def slow_call() -> None:
        time.sleep(0.004)

    settings = ScenarioSettings("server", min_duration_s=0.0, min_queries=30, warmup=0, target_qps=500.0,
                                latency_bound_ms=1000.0, seed=2)

    # execute
    result = run_scenario(_prepared(slow_call), 1, settings)

    # assert: each query waits for the ones before it, so latency from arrival dwarfs the service time
    assert result.queries == 30
    assert np.all(result.latencies_ns >= result.service_ns)
    assert result.queueing_ns.mean() > 2 * np.median(result.service_ns)
    assert result.latencies_ns[-5:].mean() > result.latencies_ns[:5].mean()


def test_the_search_stops_a_trial_once_p99_cannot_hold_the_bound(clock: VirtualClock):
    # setup
    settings = ScenarioSettings("server", min_duration_s=0.0, min_queries=1000, warmup=0, target_qps=1000.0,
                                latency_bound_ms=20.0, seed=0)

    # execute
    result = run_scenario(_prepared(fixed_service(clock, 5 * MS)), 1, settings, abort_when_bound_broken=True)

    # assert: 1000 queries, p99 breaks once 11 miss the bound (index 989 of 1000 is then over it)
    assert result.queries < 100 and result.stopped_early is not None
    assert int(np.sum(result.latencies_ns > 20 * MS)) == 1000 - int(np.floor(0.99 * 999))
    assert result.bound_held is False and result.stopped_early in result.validity.reasons


# ---- single-stream and offline -------------------------------------------------------------------------------


def test_single_stream_runs_until_both_minimums_and_reports_p90(clock: VirtualClock):
    # setup
    settings = ScenarioSettings("single-stream", min_duration_s=0.5, min_queries=20, warmup=2)

    # execute
    result = run_scenario(_prepared(fixed_service(clock, 10 * MS)), 1, settings)

    # assert: 0.5 s of 10 ms queries
    assert result.queries == 50 and result.validity.valid
    assert result.start_ns == result.starts_ns[0] and result.duration_ns == 500 * MS
    assert result.headline() == {"p90_ms": pytest.approx(10.0)}
    assert result.throughput_per_s == pytest.approx(100.0)


def test_offline_streams_enough_items_for_the_minimum_duration_and_reports_throughput(clock: VirtualClock):
    # setup: 2 ms per batch of 4 in the warm-up, so 1 s needs 500 batches, plus the 25% margin
    settings = ScenarioSettings("offline", min_duration_s=1.0, min_queries=64, warmup=5)

    # execute
    result = run_scenario(_prepared(fixed_service(clock, 2 * MS)), 4, settings)

    # assert
    assert result.queries == 625 and result.items == 2500
    assert result.headline()["items_per_s"] == pytest.approx(2000.0)
    assert result.validity.valid


def test_offline_that_runs_faster_than_its_warm_up_falls_short_and_is_invalid_with_the_reason(clock: VirtualClock):
    # setup: warm-up calls take 3 ms, the stream's calls 1 ms
    calls: list[int] = []

    def speeding_up() -> None:
        clock.now += 3 * MS if len(calls) < 5 else MS
        calls.append(clock.now)

    settings = ScenarioSettings("offline", min_duration_s=1.0, min_queries=1, warmup=5)

    # execute
    result = run_scenario(_prepared(speeding_up), 1, settings)

    # assert: sized for 3 ms calls (417 of them), the stream took 0.417 s
    assert result.queries == 417
    assert result.validity.reasons == ("ran 0.417 s, under the minimum duration of 1 s",)


def test_cancel_stops_within_one_query_and_marks_the_result_invalid(clock: VirtualClock):
    # setup
    cancel = threading.Event()
    calls: list[int] = []

    def call() -> None:
        clock.now += MS
        calls.append(clock.now)
        if len(calls) == 7:
            cancel.set()

    settings = ScenarioSettings("single-stream", min_duration_s=60.0, min_queries=10_000, warmup=0)

    # execute
    result = run_scenario(_prepared(call), 1, settings, cancel=cancel)

    # assert
    assert result.status == "cancelled" and result.queries == 7
    assert "stopped by the user before the run was complete" in result.validity.reasons


def test_a_runtime_failure_is_typed():
    # setup
    def broken() -> None:
        raise RuntimeError("device lost\ndetails")

    # execute / assert
    with pytest.raises(BackendError, match="single-stream scenario: device lost$"):
        run_scenario(_prepared(broken), 1, ScenarioSettings(warmup=0))


# ---- validity rules ------------------------------------------------------------------------------------------


def test_loadgen_validity_rules():
    server = ScenarioSettings("server", min_duration_s=1.0, min_queries=200, target_qps=10.0, latency_bound_ms=15.0)
    offline = ScenarioSettings("offline", min_duration_s=1.0, min_queries=1000)
    single = ScenarioSettings("single-stream", min_duration_s=1.0, min_queries=5)

    valid = judge_validity(server, duration_ns=2 * 10**9, queries=300, items=300, cancelled=False, p99_ms=14.0)
    short = judge_validity(server, duration_ns=10**9 // 2, queries=300, items=300, cancelled=False, p99_ms=14.0)
    few = judge_validity(server, duration_ns=2 * 10**9, queries=150, items=150, cancelled=False, p99_ms=14.0)
    over = judge_validity(server, duration_ns=2 * 10**9, queries=300, items=300, cancelled=False, p99_ms=15.5)
    items = judge_validity(offline, duration_ns=2 * 10**9, queries=100, items=1200, cancelled=False)
    thin = judge_validity(single, duration_ns=2 * 10**9, queries=6, items=6, cancelled=False)

    assert valid.valid and valid.reasons == () and valid.to_dict() == {"result": "VALID", "reasons": []}
    assert short.reasons == ("ran 0.500 s, under the minimum duration of 1 s",)
    assert few.reasons == ("150 queries, under the minimum of 200",)
    assert over.reasons == ("p99 latency 15.500 ms exceeds the bound of 15 ms",)
    assert items.valid  # offline counts items, not queries
    assert thin.reasons == ("p90 from 6 queries means little (it needs at least 10)",)
    assert all(not v.valid and v.label == "INVALID" for v in (short, few, over, thin))


@pytest.mark.parametrize("settings", [
    dict(scenario="burst"), dict(scenario="server", latency_bound_ms=10.0), dict(scenario="server", target_qps=5.0),
    dict(scenario="server", target_qps=-1.0, latency_bound_ms=1.0), dict(min_queries=0),
    dict(min_duration_s=float("inf")),
])
def test_bad_scenario_settings_are_refused(settings: dict):
    with pytest.raises(InputError):
        ScenarioSettings(**settings)


# ---- the maximum rate ----------------------------------------------------------------------------------------


def test_find_max_rate_brackets_the_highest_rate_that_holds_the_bound(clock: VirtualClock):
    # setup: 10 ms per query (capacity 100 per second), p99 within 40 ms
    settings = ScenarioSettings("server", min_duration_s=2.0, min_queries=100, warmup=2, latency_bound_ms=40.0,
                                target_qps=1.0, seed=9)

    # execute
    search = find_max_rate(_prepared(fixed_service(clock, 10 * MS)), 1, settings, relative_tolerance=0.05)

    # assert
    assert search.capacity_qps == pytest.approx(100.0)
    assert search.status == "completed" and search.max_rate_qps is not None
    held = [t.rate_qps for t in search.trials if t.held]
    failed = [t.rate_qps for t in search.trials if not t.held]
    assert search.max_rate_qps == max(held) < min(r for r in failed if r > search.max_rate_qps)
    assert search.trials[0].rate_qps == pytest.approx(100.0) and not search.trials[0].held
    assert all(t.p99_ms <= 40.0 for t in search.trials if t.held)
    assert (min(r for r in failed if r > search.max_rate_qps) - search.max_rate_qps) / search.max_rate_qps < 0.06


def test_find_max_rate_reports_none_when_the_model_alone_breaks_the_bound(clock: VirtualClock):
    # setup: 30 ms per query against a 20 ms bound
    settings = ScenarioSettings("server", min_duration_s=1.0, min_queries=100, warmup=0, latency_bound_ms=20.0,
                                target_qps=1.0)

    # execute
    search = find_max_rate(_prepared(fixed_service(clock, 30 * MS)), 1, settings)

    # assert
    assert search.max_rate_qps is None and "too long" in search.note
    assert not any(t.held for t in search.trials)


# ---- a real session ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["single-stream", "offline", "server"])
def test_every_scenario_runs_on_onnxruntime(linear_model, scenario: str):
    # setup
    handle = load_model(linear_model)
    inputs = prepare_inputs(handle.inputs, InputRequest(batch=2))
    settings = ScenarioSettings(scenario, min_duration_s=0.05, min_queries=20, warmup=2, target_qps=200.0,
                                latency_bound_ms=1000.0)

    # execute
    with prepared_session(get_backend("onnxruntime"), handle, DeviceRunner("onnxruntime", "CPUExecutionProvider"),
                          BackendOptions(threads=1), inputs.feed) as ready:
        result = run_scenario(ready, inputs.batch_size, settings)

    # assert
    document = result.to_dict()
    assert document["scenario"] == scenario and document["status"] == "completed"
    assert result.queries >= 20 and result.items == 2 * result.queries
    assert document["session"]["providers"] == ["CPUExecutionProvider"]
    assert np.all(result.latencies_ns > 0) and result.latencies_ns.dtype == np.int64


def test_find_max_rate_looks_above_a_capacity_that_holds_and_says_when_trials_are_too_short(clock: VirtualClock):
    # setup: 10 ms per query and a generous 2 s bound: one-second trials cannot see a queue grow that slowly
    settings = ScenarioSettings("server", min_duration_s=1.0, min_queries=100, warmup=0, latency_bound_ms=2000.0,
                                target_qps=1.0)

    # execute
    search = find_max_rate(_prepared(fixed_service(clock, 10 * MS)), 1, settings)

    # assert
    assert [round(t.rate_qps) for t in search.trials] == [100, 125] and all(t.held for t in search.trials)
    assert search.max_rate_qps == pytest.approx(125.0) and "longer minimum duration" in search.note
