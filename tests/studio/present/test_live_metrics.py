import numpy as np
import pytest

from engine.measure.samples import SampleBuffer
from studio.present.live_metrics import (
    MAX_PLOT_POINTS,
    ROLLING_BLOCK,
    THROUGHPUT_BIN_S,
    LatencyTracker,
    in_view,
    power_from_energy,
)


def _stream(count: int, step_ns: int = 10_000_000):
    starts = np.arange(count, dtype=np.int64) * step_ns + 5_000
    latencies = np.full(count, 2_000_000, dtype=np.int64)
    latencies[::10] = 8_000_000
    return starts, latencies


def test_incremental_updates_equal_one_big_update():
    starts, latencies = _stream(1234)
    buffer = SampleBuffer()
    stepwise = LatencyTracker(batch_size=2)
    for begin, end in ((0, 7), (7, 100), (100, 101), (101, 650), (650, 1234)):
        for start, latency in zip(starts[begin:end], latencies[begin:end]):
            buffer.append(int(start), int(latency))
        view = stepwise.update(buffer)
    whole = LatencyTracker(batch_size=2).update(SampleBuffer.from_arrays(starts, latencies))
    np.testing.assert_array_equal(view.latency_ms, whole.latency_ms)
    np.testing.assert_array_equal(view.rolling_p99_ms, whole.rolling_p99_ms)
    np.testing.assert_array_equal(view.throughput_per_s, whole.throughput_per_s)


def test_figures_match_the_stream():
    starts, latencies = _stream(1000)  # one sample every 10 ms, batch 2 -> 200 items/s
    view = LatencyTracker(batch_size=2).update(SampleBuffer.from_arrays(starts, latencies))
    assert view.x_s[0] == 0 and view.latency_ms[1] == 2.0
    assert len(view.rolling_p50_ms) == 1000 // ROLLING_BLOCK
    assert view.rolling_p50_ms[0] == 2.0 and view.rolling_p99_ms[0] == pytest.approx(8.0)
    assert np.allclose(view.throughput_per_s, 2 * (THROUGHPUT_BIN_S / 0.01) / THROUGHPUT_BIN_S)
    assert view.recent_p50_ms == 2.0


def test_empty_stream_has_no_figures():
    view = LatencyTracker().update(SampleBuffer())
    assert view.recent_p50_ms is None and view.recent_throughput_per_s is None and view.rolling_x_s.size == 0


def test_decimation_keeps_every_spike_and_zooming_shows_raw_points():
    x = np.arange(360_000) / 100.0
    y = np.ones_like(x)
    y[123_457] = 50.0  # one spike among an hour of samples
    shown_x, shown_y = in_view(x, y)
    assert len(shown_x) <= MAX_PLOT_POINTS + 1 and shown_y.max() == 50.0 and shown_y.min() == 1.0
    zoom_x, zoom_y = in_view(x, y, (1234.0, 1236.0))
    assert len(zoom_x) == 203 and np.array_equal(zoom_y, y[123_399:123_602])


def test_power_from_an_energy_counter():
    t = np.array([0, 1_000_000_000, 2_000_000_000, 2_000_000_000, 3_000_000_000])
    joules = np.array([0.0, 10.0, 30.0, 30.0, 45.0])
    times, watts = power_from_energy(t, joules)
    assert list(watts) == [10.0, 20.0, 15.0] and list(times) == [1_000_000_000, 2_000_000_000, 3_000_000_000]


def test_a_view_handed_to_the_plots_stays_as_it_was_while_the_run_goes_on():
    # setup
    starts, latencies = _stream(3000)
    buffer = SampleBuffer.from_arrays(starts[:1500], latencies[:1500])
    tracker = LatencyTracker()
    first = tracker.update(buffer)
    shown = first.latency_ms.copy(), first.rolling_p99_ms.copy()

    # execute: the tracker takes in twice as many samples, growing its columns
    buffer.extend(starts[1500:], latencies[1500:])
    later = tracker.update(buffer)

    # assert
    assert np.array_equal(first.latency_ms, shown[0]) and np.array_equal(first.rolling_p99_ms, shown[1])
    assert not first.latency_ms.flags.writeable
    assert len(later.latency_ms) == 3000 and np.array_equal(later.latency_ms[:1500], shown[0])
