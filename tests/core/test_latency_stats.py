import numpy as np
import pytest

from core.latency_stats import LatencyStats, loop_wall_ns


def test_summary_of_known_latencies():
    latencies = np.arange(1, 201, dtype=np.int64) * 1_000_000  # 1..200 ms
    stats = LatencyStats.of(latencies, wall_ns=2_000_000_000, items=200 * 4)
    assert stats.count == 200
    assert stats.mean_ms == pytest.approx(100.5)
    assert stats.min_ms == 1.0 and stats.max_ms == 200.0
    assert stats.percentiles_ms["p50"] == pytest.approx(100.5)
    assert stats.percentiles_ms["p99"] == pytest.approx(198.01)
    assert stats.std_ms == pytest.approx(np.std(np.arange(1, 201), ddof=1))
    assert stats.throughput_per_s == pytest.approx(200 * 4 / 2.0)
    assert stats.unreliable_percentiles == ()


def test_thin_percentiles_are_flagged():
    assert LatencyStats.of(np.ones(50, np.int64), wall_ns=50).unreliable_percentiles == ("p99",)
    assert LatencyStats.of(np.ones(15, np.int64), wall_ns=15).unreliable_percentiles == ("p95", "p99")
    assert LatencyStats.of(np.ones(5, np.int64), wall_ns=5).unreliable_percentiles == ("p90", "p95", "p99")


def test_no_samples_gives_no_numbers():
    stats = LatencyStats.of(np.empty(0, np.int64), wall_ns=0)
    assert stats.count == 0 and stats.mean_ms is None and stats.throughput_per_s is None
    assert stats.latency_dict()["p50"] is None



def test_a_loop_s_throughput_is_items_over_first_start_to_last_end():
    # setup: 4 samples of 1 ms every 2 ms, batches of 3
    starts = np.array([0, 2, 4, 6], np.int64) * 1_000_000
    latencies = np.full(4, 1_000_000, np.int64)
    # execute
    stats = LatencyStats.of_loop(starts, latencies, items=12)
    # assert: 12 items over 7 ms
    assert loop_wall_ns(starts, latencies) == 7_000_000
    assert stats.throughput_per_s == pytest.approx(12 / 0.007)
    assert stats.percentile("p50") == stats.p50_ms == pytest.approx(1.0)


def test_an_unknown_percentile_is_refused():
    with pytest.raises(KeyError, match="p42"):
        LatencyStats.of(np.ones(3, np.int64), wall_ns=3).percentile("p42")
