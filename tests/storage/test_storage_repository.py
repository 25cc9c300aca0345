"""The run repository on SQLite and on PostgreSQL: save, load, list, annotate, delete, and recover crashed runs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select, update

from storage import (
    ArtifactInfo,
    EnergyFigure,
    RunFilter,
    RunNotFoundError,
    RunStateError,
    open_database,
)
from storage.schema import LatencyChunkRow, RunRow


def _wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_a_finished_run_loads_back_with_every_sample_and_its_outcome(db, register_model, run_start, latency_samples):
    # setup
    starts, latencies = latency_samples(150_000)
    power_times = np.arange(100, dtype=np.int64) * 10_000_000
    power = np.linspace(20.0, 35.0, 100)
    writer = db.runs.start_run(run_start(register_model(db), tags=("baseline", "ci"), notes="first try"))

    # execute
    for part in range(0, starts.size, 40_000):  # as a live run would hand them over
        writer.append_latency(starts[part:part + 40_000], latencies[part:part + 40_000], batches=2)
    writer.append_telemetry("power_w", "cpu", power_times, power)
    writer.append_telemetry("temperature_c", "cpu", power_times[:3], [50.0, 51.5, np.nan])
    record = writer.finish("completed", summary={"p50_ms": 1.0}, telemetry_summary={"peak_c": 51.5},
                           energy=[EnergyFigure("cpu", "RAPL energy_uj counter", 0.012, total_joules=3.6)])
    loaded = db.runs.load_run(record.id)

    # assert
    assert loaded.record == record
    assert loaded.record.status == "completed" and loaded.record.ended_at >= loaded.record.started_at
    assert loaded.record.tags == ("baseline", "ci") and loaded.record.notes == "first try"
    assert loaded.record.model is not None and loaded.record.model.path == "/models/net.onnx"
    assert loaded.record.summary == {"p50_ms": 1.0}
    assert loaded.record.energy == (EnergyFigure("cpu", "RAPL energy_uj counter", 0.012, total_joules=3.6),)
    np.testing.assert_array_equal(loaded.latency.timestamps_ns, starts)
    np.testing.assert_array_equal(loaded.latency.latencies_ns, latencies)
    assert loaded.latency.batches.tolist() == [2] * starts.size
    series = {(s.metric, s.device): s for s in loaded.telemetry}
    np.testing.assert_array_equal(series["power_w", "cpu"].values, power)
    np.testing.assert_array_equal(series["temperature_c", "cpu"].values, [50.0, 51.5, np.nan])
    assert loaded.record.latency_count == starts.size and loaded.record.telemetry_count == 103


def test_the_writer_thread_saves_samples_while_the_run_goes_on(db, register_model, run_start):
    # setup
    writer = db.runs.start_run(run_start(register_model(db)), flush_interval_s=0.05)

    # execute
    writer.append_latency([10, 20, 30], [1_000, 2_000, 3_000])
    _wait_until(lambda: writer.saved_latency_count == 3)
    in_database = db.runs.load_run(writer.run_id)
    writer.finish("cancelled")

    # assert
    assert in_database.record.status == "running"
    assert in_database.latency.latencies_ns.tolist() == [1_000, 2_000, 3_000]
    assert db.runs.get_run(writer.run_id).status == "cancelled"
    assert len(db.runs.load_run(writer.run_id).latency) == 3  # cancel keeps the samples


def test_finishing_twice_appending_after_finish_and_a_failure_without_error_are_refused(db, register_model,
                                                                                         run_start):
    # setup
    writer = db.runs.start_run(run_start(register_model(db)))

    # execute / assert
    with pytest.raises(ValueError, match="error"):
        writer.finish("failed")
    record = writer.finish("failed", error="CUDA out of memory")
    assert record.status == "failed" and db.runs.get_run(record.id).error == "CUDA out of memory"
    with pytest.raises(RunStateError):
        writer.finish("completed")
    with pytest.raises(RunStateError):
        writer.append_latency([1], [1])


def test_listing_filters_by_model_device_status_tag_and_date_and_pages(db, register_model, run_start):
    # setup
    resnet, bert = register_model(db, "resnet50.onnx"), register_model(db, "bert-base.onnx")
    ids = {}
    for name, model, device, tags in [("a", resnet, "cpu", ("nightly",)), ("b", resnet, "cuda:0", ()),
                                      ("c", bert, "cpu", ("nightly",)), ("d", bert, "cpu", ())]:
        writer = db.runs.start_run(run_start(model, device=device, tags=tags))
        ids[name] = writer.finish("completed" if name != "d" else "cancelled").id

    def listed(**criteria):
        return [run.id for run in db.runs.list_runs(RunFilter(**criteria)).runs]

    # execute / assert
    assert listed() == [ids["d"], ids["c"], ids["b"], ids["a"]]  # newest first
    assert listed(model="RESNET") == [ids["b"], ids["a"]]
    assert listed(device="CUDA:0") == [ids["b"]]
    assert listed(status="cancelled") == [ids["d"]]
    assert listed(tag="nightly") == [ids["c"], ids["a"]]
    assert listed(model="bert", tag="nightly") == [ids["c"]]
    assert listed(started_after=datetime.now(UTC) - timedelta(hours=1)) == listed()
    assert listed(started_before=datetime.now(UTC) - timedelta(hours=1)) == []
    page = db.runs.list_runs(offset=1, limit=2)
    assert [run.id for run in page.runs] == [ids["c"], ids["b"]] and page.total == 4


def test_annotating_replaces_tags_and_notes(db, register_model, run_start):
    # setup
    run_id = db.runs.start_run(run_start(register_model(db), tags=("old",))).finish().id

    # execute
    record = db.runs.annotate_run(run_id, tags=["fp16", "keep", "fp16"], notes="fastest so far")

    # assert
    assert record.tags == ("fp16", "keep") and record.notes == "fastest so far"
    assert db.runs.list_runs(RunFilter(tag="old")).total == 0


def test_deleting_a_run_removes_its_samples_but_not_other_runs(db, register_model, run_start, tmp_path):
    # setup
    model = register_model(db)
    doomed, kept = (db.runs.start_run(run_start(model)) for _ in range(2))
    for writer in (doomed, kept):
        writer.append_latency(np.arange(100), np.arange(100) + 1)
        writer.finish()
    db.runs.export_run(doomed.run_id, tmp_path / "doomed.json", "json")

    # execute
    db.runs.delete_run(doomed.run_id)

    # assert
    with pytest.raises(RunNotFoundError):
        db.runs.load_run(doomed.run_id)
    with db.session(write=False) as session:
        chunk_runs = set(session.scalars(select(LatencyChunkRow.run_id)))
    assert chunk_runs == {kept.run_id}
    assert len(db.runs.load_run(kept.run_id).latency) == 100
    assert (tmp_path / "doomed.json").exists()  # exported files are the user's: never deleted with the run


def test_a_run_still_being_written_cannot_be_deleted(db, register_model, run_start):
    # setup
    writer = db.runs.start_run(run_start(register_model(db)))

    # execute / assert
    with pytest.raises(RunStateError, match="still being recorded"):
        db.runs.delete_run(writer.run_id)
    writer.finish()


def test_opening_marks_runs_of_dead_processes_interrupted_and_leaves_live_ones(database_url, register_model,
                                                                                run_start):
    # setup
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    with open_database(database_url) as database:
        model = register_model(database)
        crashed = database.runs.start_run(run_start(model))
        crashed.append_latency([1, 2], [5, 6])
        crashed.flush()
        elsewhere_stale = database.runs.start_run(run_start(model))
        elsewhere_live = database.runs.start_run(run_start(model))
        live = database.runs.start_run(run_start(model))
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        with database.session(write=True) as session:
            session.execute(update(RunRow).where(RunRow.id == crashed.run_id).values(writer_pid=dead_pid))
            session.execute(update(RunRow).where(RunRow.id == elsewhere_stale.run_id)
                            .values(host="other-workstation", heartbeat_at=long_ago))
            session.execute(update(RunRow).where(RunRow.id == elsewhere_live.run_id).values(host="other-workstation"))

        # execute
        with open_database(database_url) as reopened:
            marked = reopened.interrupted_at_open
            statuses = {run.id: run.status for run in reopened.runs.list_runs().runs}
            crashed_data = reopened.runs.load_run(crashed.run_id)
        for writer in (live, elsewhere_live, crashed, elsewhere_stale):
            writer.finish("cancelled")  # pids and hosts were faked above: these writers are in fact alive

    # assert
    assert sorted(marked) == sorted([crashed.run_id, elsewhere_stale.run_id])
    assert statuses[live.run_id] == "running" and statuses[elsewhere_live.run_id] == "running"
    assert crashed_data.record.status == "interrupted"
    assert f"pid {dead_pid}" in crashed_data.record.error
    assert crashed_data.latency.latencies_ns.tolist() == [5, 6]


def test_closing_the_database_marks_unfinished_runs_interrupted_with_their_samples(database_url, register_model,
                                                                                   run_start):
    # setup
    database = open_database(database_url)
    writer = database.runs.start_run(run_start(register_model(database)))
    writer.append_latency([1, 2, 3], [7, 8, 9])

    # execute
    database.close()

    # assert
    with open_database(database_url) as reopened:
        data = reopened.runs.load_run(writer.run_id)
    assert data.record.status == "interrupted" and data.latency.latencies_ns.tolist() == [7, 8, 9]


def test_a_missing_run_is_a_typed_error(db):
    with pytest.raises(RunNotFoundError, match="no run 404"):
        db.runs.get_run(404)


def test_recipes_artifacts_and_their_exports_are_registered_once_by_content(db, register_model, run_start,
                                                                            tmp_path):
    # setup
    model = register_model(db)
    recipe = db.catalog.register_recipe('{"quantize":{"mode":"int8"}}')
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(b"deployment bundle")
    info = ArtifactInfo(parent_model_id=model, recipe_id=recipe, path="/cache/net.int8.onnx", sha256="d" * 64,
                        size_bytes=99, fidelity={"top1_agreement": 0.998})

    # execute
    artifact = db.catalog.register_artifact(info)
    again = db.catalog.register_artifact(info)
    writer = db.runs.start_run(run_start(None, artifact_id=artifact))
    record = writer.finish()
    exported = db.catalog.record_artifact_export(artifact, bundle, "bundle")

    # assert
    assert again == artifact and db.catalog.register_recipe('{"quantize":{"mode":"int8"}}') == recipe
    assert db.catalog.artifact(artifact) == info
    assert record.model is not None and record.model.id == model  # the artifact's parent model
    assert record.artifact_path == "/cache/net.int8.onnx"
    assert [run.id for run in db.runs.list_runs(RunFilter(model="net")).runs] == [record.id]
    assert exported.sha256 == hashlib.sha256(b"deployment bundle").hexdigest()


def test_a_recipe_reads_back_by_id(tmp_path):
    from storage import open_database

    with open_database(str(tmp_path / "studio.db")) as db:
        recipe_id = db.catalog.register_recipe('{"quantization":{"method":"dynamic_int8"}}')
        assert db.catalog.recipe(recipe_id) == '{"quantization":{"method":"dynamic_int8"}}'
        assert db.catalog.recipe(recipe_id + 1) is None
