"""Storage throughput on SQLite in a temporary folder: prints figures, asserts nothing (see DESIGN.md section 5).

Measures what a user feels: saving a million-sample run through the run writer (appended in 10,000-sample
pieces, as a live run hands them over, with the writer thread flushing meanwhile), loading it back, comparing
two 200,000-sample runs with the bootstrap interval and Mann-Whitney test, and the disk space per million
samples. Latencies are log-normal around 1 ms at nanosecond resolution, as real timings are: random low bits
are what makes samples hard to compress, so this does not flatter the packed format.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Database, ModelInfo, RunStart, open_database  # noqa: E402

PIECE = 10_000


def synthetic_run(count: int, median_ns: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latencies = (median_ns * rng.lognormal(0.0, 0.15, count)).astype(np.int64)
    gaps = rng.integers(2_000, 20_000, count)
    starts = 10**15 + np.concatenate([[0], np.cumsum(latencies[:-1] + gaps[:-1])])
    return starts.astype(np.int64), latencies


def record_run(database: Database, model_id: int, starts: np.ndarray, latencies: np.ndarray) -> int:
    writer = database.runs.start_run(RunStart(device="cpu", backend="onnxruntime", model_id=model_id))
    for offset in range(0, starts.size, PIECE):
        writer.append_latency(starts[offset:offset + PIECE], latencies[offset:offset + PIECE], 1)
    return writer.finish("completed").id


def database_bytes(database: Database) -> int:
    with database.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = database.sqlite_path
    assert path is not None
    return sum(os.path.getsize(f"{path}{suffix}") for suffix in ("", "-wal") if os.path.exists(f"{path}{suffix}"))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="studio-storage-bench-") as folder:
        with open_database(str(Path(folder) / "studio.db")) as database:
            model_id = database.catalog.register_model(ModelInfo("/models/bench.onnx", "b" * 64, "onnx", 1))
            million_starts, million_latencies = synthetic_run(1_000_000, 1e6, seed=1)
            size_before = database_bytes(database)

            began = time.perf_counter()
            million_id = record_run(database, model_id, million_starts, million_latencies)
            write_s = time.perf_counter() - began
            size_per_million = database_bytes(database) - size_before

            began = time.perf_counter()
            loaded = database.runs.load_run(million_id)
            load_s = time.perf_counter() - began
            assert np.array_equal(loaded.latency.latencies_ns, million_latencies), "round trip lost samples"

            baseline = record_run(database, model_id, *synthetic_run(200_000, 1.0e6, seed=2))
            candidate = record_run(database, model_id, *synthetic_run(200_000, 0.9e6, seed=3))
            began = time.perf_counter()
            database.runs.compare([baseline, candidate])
            cold_compare_s = time.perf_counter() - began
            began = time.perf_counter()
            comparison = database.runs.compare([baseline, candidate])
            warm_compare_s = time.perf_counter() - began

    print(f"write 1,000,000 latency samples through the run writer: {write_s:.3f} s (target < 2 s)")
    print(f"load them back:                                          {load_s:.3f} s (target < 1 s)")
    print(f"compare two runs of 200,000 samples, bootstrap {comparison.resamples:,} resamples + Mann-Whitney: "
          f"{warm_compare_s:.3f} s (target < 0.5 s); first call in the process {cold_compare_s:.3f} s")
    print(f"database size per million latency samples:               {size_per_million / 1e6:.1f} MB "
          f"({size_per_million / 1e6:.2f} bytes/sample; raw columns 20 bytes/sample)")
    print(f"comparison verdict (synthetic 10% speed-up): {comparison.pairs[0].explanation}")


if __name__ == "__main__":
    main()
