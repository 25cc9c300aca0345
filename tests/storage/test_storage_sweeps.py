"""Sweeps, their point runs, resume bookkeeping, and per-layer profiles stored with runs (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest
import sqlalchemy as sa
from alembic import command

from storage import (
    Database,
    RunNotFoundError,
    RunStateError,
    SweepNotFoundError,
    SweepStart,
    open_database,
)
from storage.migrate import alembic_config, head_revision
from storage.schema import SweepRow

SETTINGS = {"grid": {"batches": [1, 2], "threads": [1, 2], "providers": ["cpu"], "recipes": [None]}}


def _point(batch: int, threads: int) -> str:
    return f'{{"batch":{batch},"provider":"cpu","recipe":null,"threads":{threads}}}'


def _measure(db: Database, run_start, model_id: int, sweep_id: int, point: str, status: str) -> int:
    writer = db.runs.start_run(run_start(model_id, sweep_id=sweep_id, sweep_point=point))
    writer.append_latency([1, 2, 3], [10, 20, 30])
    error = "the point's provider vanished" if status == "failed" else None
    return writer.finish(status, summary={"point": point}, error=error).id


def test_completed_points_are_what_a_resumed_sweep_skips(db: Database, register_model, run_start):
    # setup
    model_id = register_model(db)
    sweep = db.sweeps.create_sweep(SweepStart(settings=SETTINGS, seed=7, model_id=model_id, notes="grid"))
    done = _measure(db, run_start, model_id, sweep.id, _point(1, 1), "completed")
    _measure(db, run_start, model_id, sweep.id, _point(2, 1), "cancelled")
    _measure(db, run_start, model_id, sweep.id, _point(1, 2), "failed")
    unrelated = db.runs.start_run(run_start(model_id)).finish().id

    # execute
    completed = db.sweeps.completed_points(sweep.id)
    runs = db.sweeps.sweep_runs(sweep.id)
    record = db.sweeps.get_sweep(sweep.id)

    # assert
    assert completed == {_point(1, 1): done}
    assert [run.sweep_point for run in runs] == [_point(1, 1), _point(2, 1), _point(1, 2)]
    assert unrelated not in {run.id for run in runs}
    assert all(run.sweep_id == sweep.id for run in runs)
    assert (record.status, record.seed, record.run_count, record.settings) == ("running", 7, 3, SETTINGS)
    assert record.model is not None and record.model.id == model_id
    assert db.runs.get_run(done).to_dict()["sweep_point"] == _point(1, 1)


def test_a_point_measured_again_after_a_failure_counts_once_with_its_latest_run(db: Database, register_model,
                                                                                run_start):
    # setup
    model_id = register_model(db)
    sweep = db.sweeps.create_sweep(SweepStart(settings=SETTINGS, seed=0))
    _measure(db, run_start, model_id, sweep.id, _point(1, 1), "failed")
    first = _measure(db, run_start, model_id, sweep.id, _point(1, 1), "completed")
    second = _measure(db, run_start, model_id, sweep.id, _point(1, 1), "completed")

    # execute
    completed = db.sweeps.completed_points(sweep.id)

    # assert
    assert completed == {_point(1, 1): second} and first < second


def test_finishing_listing_and_resuming_a_sweep(db: Database):
    # setup
    first = db.sweeps.create_sweep(SweepStart(settings=SETTINGS, seed=1))
    second = db.sweeps.create_sweep(SweepStart(settings=SETTINGS, seed=2))

    # execute
    finished = db.sweeps.finish_sweep(first.id, "cancelled", summary={"fastest": {"key": _point(1, 1)}})
    listed = db.sweeps.list_sweeps()
    resumed = db.sweeps.resume_sweep(first.id)

    # assert
    assert finished.status == "cancelled" and finished.ended_at is not None
    assert finished.summary == {"fastest": {"key": _point(1, 1)}}
    assert [sweep.id for sweep in listed] == [second.id, first.id]
    assert resumed.status == "running" and resumed.ended_at is None
    with pytest.raises(ValueError):
        db.sweeps.finish_sweep(first.id, "running")


def test_unknown_sweeps_are_refused(db: Database, register_model, run_start):
    # setup
    model_id = register_model(db)

    # execute / assert
    with pytest.raises(SweepNotFoundError):
        db.sweeps.get_sweep(404)
    with pytest.raises(SweepNotFoundError):
        db.sweeps.sweep_runs(404)
    with pytest.raises(SweepNotFoundError):
        db.runs.start_run(run_start(model_id, sweep_id=404, sweep_point=_point(1, 1)))
    with pytest.raises(ValueError, match="both sweep_id and sweep_point"):
        run_start(model_id, sweep_id=1)


def test_a_sweep_whose_process_died_is_interrupted_on_the_next_open(database_url: str):
    # setup: a sweep owned by a pid that cannot exist
    with open_database(database_url) as db:
        sweep = db.sweeps.create_sweep(SweepStart(settings=SETTINGS, seed=3))
        db.transact(lambda s: s.execute(sa.update(SweepRow).where(SweepRow.id == sweep.id)
                                        .values(writer_pid=2**22 + 12345)), write=True, where="test")
        alive = db.sweeps.create_sweep(SweepStart(settings=SETTINGS, seed=4))

    # execute
    with open_database(database_url) as db:
        marked = db.interrupted_sweeps_at_open
        statuses = {db.sweeps.get_sweep(sweep.id).status, db.sweeps.get_sweep(alive.id).status}

    # assert
    assert marked == (sweep.id,)
    assert statuses == {"interrupted", "running"}


def test_resuming_a_sweep_another_live_process_runs_is_refused(db: Database):
    # setup: pretend our parent process (alive, and not us) is running the sweep
    sweep = db.sweeps.create_sweep(SweepStart(settings=SETTINGS, seed=5))
    parent = psutil.Process(os.getppid())
    db.transact(lambda s: s.execute(sa.update(SweepRow).where(SweepRow.id == sweep.id)
                                    .values(writer_pid=parent.pid, writer_started=parent.create_time())),
                write=True, where="test")

    # execute / assert
    with pytest.raises(RunStateError, match="still being run"):
        db.sweeps.resume_sweep(sweep.id)


def test_a_layer_profile_is_stored_with_its_run_replaced_and_deleted_with_it(db: Database, register_model,
                                                                             run_start):
    # setup
    run_id = db.runs.start_run(run_start(register_model(db))).finish().id
    other = db.runs.start_run(run_start(register_model(db, "other.onnx"))).finish().id
    profile = {"format": 1, "nodes": [{"name": "conv", "mean_us": 12.5, "macs": None}], "placement": {"x": [1, 2]}}

    # execute
    db.runs.save_profile(run_id, "onnxruntime", {"format": 1, "nodes": []})
    saved = db.runs.save_profile(run_id, "onnxruntime", profile)
    loaded = db.runs.load_profile(run_id)

    # assert
    assert loaded is not None and loaded.profile == profile == saved.profile
    assert loaded.runtime == "onnxruntime" and loaded.created_at.tzinfo is not None
    assert db.runs.load_profile(other) is None
    db.runs.delete_run(run_id)
    with pytest.raises(RunNotFoundError):
        db.runs.load_profile(run_id)
    with pytest.raises(RunNotFoundError):
        db.runs.save_profile(run_id, "onnxruntime", profile)
    with pytest.raises(ValueError):
        db.runs.save_profile(other, "torch", {"mean": float("nan")})


def test_upgrading_a_first_schema_database_keeps_its_runs_and_adds_sweeps(database_url: str, sqlite_path: Path):
    # setup: a database built by the first migration only, holding one run
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0001_initial")
        connection.execute(sa.text(
            "INSERT INTO runs (device, backend, provider_options, settings, status, started_at, environment, host, "
            "notes, latency_count, telemetry_count) VALUES ('cpu', 'onnxruntime', '{}', '{}', 'completed', "
            "'2025-01-01 00:00:00', '{}', 'h', '', 0, 0)"))
    engine.dispose()

    # execute
    with open_database(database_url) as db:
        with db.engine.connect() as connection:
            revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            tables = set(sa.inspect(connection).get_table_names())
        run = db.runs.list_runs().runs[0]
        sweep = db.sweeps.create_sweep(SweepStart(settings=SETTINGS, seed=0))

    # assert
    assert revision == head_revision() == "0002_sweeps_profiles"
    assert {"sweeps", "run_profiles"} <= tables
    assert run.status == "completed" and run.sweep_id is None and run.sweep_point is None
    assert sweep.run_count == 0
