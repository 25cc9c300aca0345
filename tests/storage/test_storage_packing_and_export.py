"""Packed sample chunks round-trip exactly; exports are complete, parseable and never half-written."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from storage import (
    DamagedSamplesError,
    ExportError,
    LatencySamples,
    RunData,
    RunRecord,
    TelemetrySeries,
    export_run_data,
    packing,
)


@pytest.mark.parametrize("values", [
    np.array([], dtype=np.int64),
    np.array([5], dtype=np.int64),
    np.array([-(2**63), 2**63 - 1, 0, -1, 123_456_789_012], dtype=np.int64),  # deltas wrap around
    np.cumsum(np.random.default_rng(0).integers(900_000, 1_100_000, 70_000)).astype(np.int64),
])
def test_int64_columns_round_trip_exactly_with_and_without_delta(values: np.ndarray):
    for delta in (False, True):
        blob = packing.pack(values, packing.INT64, delta=delta)
        np.testing.assert_array_equal(packing.unpack(blob, values.size, packing.INT64, delta=delta), values)


def test_floats_round_trip_bit_for_bit_including_nan_and_infinity():
    values = np.array([0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, 1e-300], dtype=np.float64)
    restored = packing.unpack(packing.pack(values, packing.FLOAT64), values.size, packing.FLOAT64)
    assert restored.tobytes() == values.tobytes()


def test_steady_timestamps_pack_far_below_their_raw_size():
    timestamps = np.arange(65_536, dtype=np.int64) * 1_000_123 + 10**15
    assert len(packing.pack(timestamps, packing.INT64, delta=True)) < timestamps.nbytes / 20


def test_an_unknown_codec_a_wrong_count_or_a_damaged_chunk_is_a_typed_error():
    blob = packing.pack(np.arange(10), packing.INT64)
    with pytest.raises(DamagedSamplesError, match="newer Studio"):
        packing.unpack(blob, 10, packing.INT64, codec=99)
    with pytest.raises(DamagedSamplesError, match="expected 11"):
        packing.unpack(blob, 11, packing.INT64)
    with pytest.raises(DamagedSamplesError, match="holds more than 80 bytes, expected 10"):
        packing.unpack(packing.pack(np.arange(10**6), packing.INT64), 10, packing.INT64)  # inflates 80 bytes only
    with pytest.raises(DamagedSamplesError, match="damaged"):
        packing.unpack(blob[:4] + b"\xff" * 8 + blob[12:], 10, packing.INT64)


def _run_data() -> RunData:
    record = RunRecord(
        id=7, status="completed", device="cpu, socket 0", backend="onnxruntime", provider=None, provider_options={},
        settings={"batch": 2}, model=None, artifact_id=None, artifact_path=None,
        started_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), ended_at=None, error=None, summary={"p50_ms": 1.5},
        telemetry_summary=None, energy=(), environment={}, host="bench-1", tags=("a",), notes="", latency_count=3,
        telemetry_count=2)
    latency = LatencySamples(np.array([10, 20, 30]), np.array([5, 6, 7]), np.array([2, 2, 2], dtype=np.int32))
    power = TelemetrySeries("power_w", "gpu0", np.array([11, 21]), np.array([61.5, np.nan]))
    return RunData(record, latency, (power,))


def test_csv_export_has_one_row_per_sample(tmp_path: Path):
    # execute
    exported = export_run_data(_run_data(), tmp_path / "run.csv", "csv")

    # assert
    with open(exported.path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["kind"], r["timestamp_ns"], r["value"], r["batch"]) for r in rows] == [
        ("latency", "10", "5", "2"), ("latency", "20", "6", "2"), ("latency", "30", "7", "2"),
        ("telemetry", "11", "61.5", ""), ("telemetry", "21", "", "")]
    assert rows[0]["device"] == "cpu, socket 0" and rows[3]["metric"] == "power_w"
    assert exported.sha256 == hashlib.sha256(Path(exported.path).read_bytes()).hexdigest()


def test_json_export_holds_the_record_and_all_samples(tmp_path: Path):
    # execute
    exported = export_run_data(_run_data(), tmp_path / "run.json", "json")

    # assert
    document = json.loads(Path(exported.path).read_text())
    assert document["format"] == "autoglm-studio-run" and document["run"]["id"] == 7
    assert document["run"]["started_at"] == "2025-01-02T03:04:05+00:00"
    assert document["latency"] == {"timestamp_ns": [10, 20, 30], "latency_ns": [5, 6, 7], "batch": [2, 2, 2]}
    assert document["telemetry"][0]["values"] == [61.5, None]


def test_a_failed_export_leaves_the_previous_file_and_no_temporary_file(tmp_path: Path, monkeypatch):
    # setup
    destination = tmp_path / "run.json"
    destination.write_text("previous export")

    def disk_full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)

    # execute
    with pytest.raises(ExportError, match="full"):
        export_run_data(_run_data(), destination, "json")

    # assert
    assert destination.read_text() == "previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_exporting_to_an_unknown_format_or_a_missing_folder_is_refused(tmp_path: Path):
    with pytest.raises(ExportError, match="choose one of csv, json"):
        export_run_data(_run_data(), tmp_path / "run.xml", "xml")
    with pytest.raises(ExportError):
        export_run_data(_run_data(), tmp_path / "missing" / "run.csv", "csv")
    assert list(tmp_path.iterdir()) == []


def test_exports_through_the_repository_are_recorded(db, register_model, run_start, tmp_path):
    # setup
    writer = db.runs.start_run(run_start(register_model(db)))
    writer.append_latency([1, 2], [3, 4])
    run_id = writer.finish().id

    # execute
    exported = db.runs.export_run(run_id, tmp_path / "run.csv", "csv")

    # assert
    assert db.runs.exports_of(run_id) == (exported,)
