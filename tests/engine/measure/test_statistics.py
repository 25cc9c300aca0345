import numpy as np
import pytest

from engine.measure.samples import SampleBuffer
from engine.measure.statistics import summarize


def test_summary_of_known_latencies():
    latencies = np.arange(1, 201, dtype=np.int64) * 1_000_000  # 1..200 ms
    stats = summarize(latencies, wall_ns=2_000_000_000, batch_size=4)
    assert stats.count == 200
    assert stats.mean_ms == pytest.approx(100.5)
    assert stats.min_ms == 1.0 and stats.max_ms == 200.0
    assert stats.percentiles_ms["p50"] == pytest.approx(100.5)
    assert stats.percentiles_ms["p99"] == pytest.approx(198.01)
    assert stats.std_ms == pytest.approx(np.std(np.arange(1, 201), ddof=1))
    assert stats.throughput_per_s == pytest.approx(200 * 4 / 2.0)
    assert stats.unreliable_percentiles == ()


def test_thin_percentiles_are_flagged():
    assert summarize(np.ones(50, np.int64), 50, 1).unreliable_percentiles == ("p99",)
    assert summarize(np.ones(15, np.int64), 15, 1).unreliable_percentiles == ("p95", "p99")
    assert summarize(np.ones(5, np.int64), 5, 1).unreliable_percentiles == ("p90", "p95", "p99")


def test_no_samples_gives_no_numbers():
    stats = summarize(np.empty(0, np.int64), 0, 1)
    assert stats.count == 0 and stats.mean_ms is None and stats.throughput_per_s is None
    assert stats.latency_dict()["p50"] is None


def test_sample_buffer_grows_and_snapshots():
    buffer = SampleBuffer(capacity=16)
    for i in range(100):
        buffer.append(i * 10, i)
    starts, latencies = buffer.snapshot()
    assert len(buffer) == 100 and starts[-1] == 990 and latencies[42] == 42
    assert list(buffer.snapshot(since=98)[1]) == [98, 99]
    buffer.reserve(1000)
    assert list(buffer.snapshot()[1]) == list(range(100))
