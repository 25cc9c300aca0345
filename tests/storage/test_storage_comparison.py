"""Comparing runs: exact fast bootstrap, verdicts only outside the noise, energy side by side, honest warnings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from storage import (
    ComparisonError,
    EnergyFigure,
    LatencySamples,
    RunData,
    RunRecord,
    compare_runs,
)
from storage.bootstrap import bootstrap_medians, median_ratio_interval
from storage.rank_test import mann_whitney_u


def _run(run_id: int, latencies_ns: np.ndarray, *, host: str = "bench-1", batch: int = 1,
         environment: dict | None = None, energy: tuple[EnergyFigure, ...] = (), status: str = "completed"
         ) -> RunData:
    latencies = np.asarray(latencies_ns, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(latencies[:-1])]).astype(np.int64)
    record = RunRecord(
        id=run_id, status=status, device="cpu", backend="onnxruntime", provider=None, provider_options={},
        settings={}, model=None, artifact_id=None, artifact_path=None, started_at=datetime.now(UTC), ended_at=None,
        error=None, summary=None, telemetry_summary=None, energy=energy,
        environment=environment if environment is not None else {"cpu": "Test CPU"}, host=host, tags=(), notes="",
        latency_count=latencies.size, telemetry_count=0)
    return RunData(record, LatencySamples(starts, latencies, np.full(latencies.size, batch, np.int32)), ())


def _lognormal(count: int, median_ns: float, seed: int) -> np.ndarray:
    return (median_ns * np.random.default_rng(seed).lognormal(0.0, 0.2, count)).astype(np.int64)


@pytest.mark.parametrize("size", [41, 40])
def test_order_statistic_bootstrap_matches_the_naive_bootstrap_distribution(size: int):
    # setup
    rng = np.random.default_rng(7)
    values = np.sort(rng.normal(100.0, 15.0, size))
    resamples = 20_000

    # execute
    naive = np.median(values[rng.integers(0, size, (resamples, size))], axis=1)
    fast = bootstrap_medians(values, resamples, np.random.default_rng(8))

    # assert: the two empirical distributions agree (Kolmogorov-Smirnov distance)
    grid = np.union1d(naive, fast)
    distance = np.max(np.abs(np.searchsorted(np.sort(naive), grid, side="right") / resamples
                             - np.searchsorted(np.sort(fast), grid, side="right") / resamples))
    assert distance < 0.02


def test_mann_whitney_u_counts_pairs_and_matches_the_reference_p_value_with_ties():
    # setup
    candidate = np.array([1, 1, 1, 2, 2, 3] * 5)
    baseline = np.array([1, 2, 2, 3, 3, 3] * 5)
    pairwise_u = np.sum(candidate[:, None] > baseline[None, :]) + 0.5 * np.sum(candidate[:, None] == baseline[None, :])

    # execute
    u_statistic, p_value = mann_whitney_u(candidate, baseline)

    # assert: scipy.stats.mannwhitneyu(candidate, baseline, method="asymptotic") gives U 250, p 0.0017601510190722
    assert u_statistic == pairwise_u == 250.0
    assert p_value == pytest.approx(0.0017601510190722, rel=1e-12)
    assert mann_whitney_u(np.full(30, 5), np.full(30, 5)) == (450.0, 1.0)


def test_ratio_interval_is_seeded_and_brackets_a_known_shift():
    # setup
    baseline, candidate = _lognormal(5_000, 2e6, 1), _lognormal(5_000, 1.5e6, 2)

    # execute
    first = median_ratio_interval(baseline, candidate, seed=3)
    again = median_ratio_interval(baseline, candidate, seed=3)

    # assert
    assert first == again
    assert first.low < first.ratio < first.high
    assert first.low < 0.75 < first.high


def test_a_clear_speed_up_gets_a_verdict_with_mann_whitney():
    # setup
    runs = [_run(1, _lognormal(2_000, 2e6, 1)), _run(2, _lognormal(2_000, 1e6, 2)), _run(3, _lognormal(2_000, 3e6, 3))]

    # execute
    comparison = compare_runs(runs)

    # assert
    faster, slower = comparison.pairs
    assert faster.verdict == "faster" and faster.ci_high < 1 and faster.p_value < 1e-6
    assert faster.median_ratio == pytest.approx(0.5, rel=0.05) and "speed-up" in faster.explanation
    assert slower.verdict == "slower" and slower.ci_low > 1
    assert comparison.warnings == ()


def test_no_verdict_when_the_interval_includes_one():
    # setup: two runs drawn from the same distribution
    runs = [_run(1, _lognormal(3_000, 2e6, 1)), _run(2, _lognormal(3_000, 2e6, 2))]

    # execute
    pair = compare_runs(runs).pairs[0]

    # assert
    assert pair.ci_low <= 1 <= pair.ci_high
    assert pair.verdict is None and "includes 1" in pair.explanation


def test_too_few_samples_give_no_interval_and_no_verdict():
    pair = compare_runs([_run(1, [1, 2, 3]), _run(2, [1, 2, 3])]).pairs[0]
    assert pair.verdict is None and pair.median_ratio is None and "Too few samples" in pair.explanation


def test_summary_statistics_are_aligned_per_run():
    # setup
    runs = [_run(1, np.full(200, 2_000_000)), _run(2, np.full(50, 1_000_000), batch=4)]

    # execute
    table = dict(compare_runs(runs).statistics_table())

    # assert
    assert table["count"] == [200, 50]
    assert table["p50_ms"] == [2.0, 1.0]
    assert table["throughput_per_s"] == [pytest.approx(500.0), pytest.approx(4_000.0)]


def test_percentiles_from_too_few_samples_are_flagged():
    statistics = _run(1, np.arange(1, 51) * 1000).latency.statistics()
    assert statistics.unreliable_percentiles == ("p99",)


def test_energy_per_inference_is_shown_side_by_side_with_reasons_where_missing():
    # setup
    gpu = EnergyFigure("gpu0", "NVML total energy counter", 0.5)
    runs = [_run(1, _lognormal(100, 1e6, 1), energy=(gpu,)),
            _run(2, _lognormal(100, 1e6, 2), energy=(replace(gpu, joules_per_inference=0.25),)),
            _run(3, _lognormal(100, 1e6, 3), energy=(EnergyFigure("gpu0", "NVML total energy counter", None,
                                                                  unavailable_reason="NVML not supported"),))]

    # execute
    rows = compare_runs(runs).energy

    # assert
    assert len(rows) == 1
    assert rows[0].joules_per_inference == (0.5, 0.25, None)
    assert rows[0].unavailable_reasons == (None, None, "NVML not supported")


def test_runs_from_other_machines_environments_batches_or_unfinished_runs_are_flagged():
    # setup
    runs = [_run(1, _lognormal(100, 1e6, 1), environment={"packages": {"onnxruntime": "1.20"}, "cpu": "A"}),
            _run(2, _lognormal(100, 1e6, 2), host="laptop", batch=8, status="interrupted",
                 environment={"packages": {"onnxruntime": "1.21"}, "cpu": "A"})]

    # execute
    warnings = " | ".join(compare_runs(runs).warnings)

    # assert
    assert "different machines" in warnings and "laptop" in warnings
    assert "packages.onnxruntime" in warnings and "cpu," not in warnings
    assert "different batch sizes" in warnings
    assert "Run 2 is interrupted" in warnings


@pytest.mark.parametrize("count", [1, 9])
def test_only_two_to_eight_runs_can_be_compared(count: int):
    with pytest.raises(ComparisonError):
        compare_runs([_run(i, [1, 2]) for i in range(count)])


def test_comparing_saved_runs_through_the_repository(db, register_model, run_start, latency_samples):
    # setup
    model = register_model(db)
    ids = []
    for median in (2_000_000, 1_000_000):
        writer = db.runs.start_run(run_start(model))
        writer.append_latency(*latency_samples(1_000, median_ns=median))
        ids.append(writer.finish().id)

    # execute
    comparison = db.runs.compare(ids)

    # assert
    assert [run.run_id for run in comparison.runs] == ids
    assert comparison.pairs[0].verdict == "faster"
    assert comparison.to_dict()["pairs"][0]["run_id"] == ids[1]
