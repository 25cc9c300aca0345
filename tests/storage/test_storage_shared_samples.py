"""A run writer that reads the benchmark's own sample buffer: every sample saved, none copied.

That none is lost when the database refuses them is in test_storage_failures (the locked database).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.growable import GrowableColumns
from storage import RunStateError


def _benchmark_buffer() -> GrowableColumns:
    return GrowableColumns((np.int64, np.int64))


def test_a_run_saves_the_buffer_its_benchmark_fills_while_it_runs(db, register_model, run_start, latency_samples):
    # setup
    starts, latencies = latency_samples(20_000)
    buffer = _benchmark_buffer()
    writer = db.runs.start_run(run_start(register_model(db)), flush_interval_s=0.01)
    writer.read_latency_from(buffer, batch_size=4)

    # execute: this thread is the benchmark, appending one sample at a time while the writer thread saves
    for start, latency in zip(starts[:12_000].tolist(), latencies[:12_000].tolist()):
        buffer.append(start, latency)
    deadline = time.monotonic() + 10
    while writer.saved_latency_count < 12_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    saved_while_running = writer.saved_latency_count
    for start, latency in zip(starts[12_000:].tolist(), latencies[12_000:].tolist()):
        buffer.append(start, latency)
    record = writer.finish("completed")
    loaded = db.runs.load_run(record.id)

    # assert
    assert saved_while_running == 12_000
    np.testing.assert_array_equal(loaded.latency.timestamps_ns, starts)
    np.testing.assert_array_equal(loaded.latency.latencies_ns, latencies)
    assert loaded.latency.batches.tolist() == [4] * starts.size and record.latency_count == starts.size


def test_a_shared_buffer_takes_no_other_samples_and_ends_with_the_run(db, register_model, run_start):
    # setup
    buffer = _benchmark_buffer()
    buffer.extend(np.array([1, 2]), np.array([10, 20]))
    writer = db.runs.start_run(run_start(register_model(db)))
    writer.read_latency_from(buffer, batch_size=1)

    # execute
    with pytest.raises(RunStateError, match="reads its latency samples from the benchmark's buffer"):
        writer.append_latency([3], [30])
    record = writer.finish("cancelled")
    buffer.append(3, 30)  # a late sample after the run ended

    # assert
    assert record.latency_count == 2 and writer.snapshot().latency.latencies_ns.tolist() == [10, 20]
    assert db.runs.load_run(record.id).latency.latencies_ns.tolist() == [10, 20]


def test_a_run_with_samples_of_its_own_cannot_switch_to_a_buffer(db, register_model, run_start):
    # setup
    writer = db.runs.start_run(run_start(register_model(db)))
    writer.append_latency([1], [10])

    # execute / assert
    with pytest.raises(RunStateError, match="already holds latency samples"):
        writer.read_latency_from(_benchmark_buffer(), batch_size=1)
    with pytest.raises(ValueError, match="int64 starts and latencies"):
        db.runs.start_run(run_start(register_model(db))).read_latency_from(
            GrowableColumns((np.int64, np.float64)), batch_size=1)
    writer.finish("completed")
