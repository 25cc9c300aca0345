"""Databases that are newer, damaged, foreign, locked, read-only or full give typed errors and lose nothing."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, event, text

from core.growable import GrowableColumns
from storage import (
    DatabaseCorruptError,
    DatabaseFullError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    DatabaseSchemaTooNewError,
    DatabaseUnavailableError,
    NotAStudioDatabaseError,
    export_run_data,
    move_database_aside,
    open_database,
)

FUTURE_REVISION = "9999_from_the_future"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_database_with_a_run(path: Path, register_model, run_start, samples: int = 2_000) -> int:
    with open_database(str(path)) as database:
        writer = database.runs.start_run(run_start(register_model(database)))
        writer.append_latency(np.arange(samples), np.random.default_rng(1).integers(1, 10**9, samples))
        return writer.finish().id


def test_a_newer_schema_is_refused_and_left_untouched(database_url: str, sqlite_path: Path, register_model,
                                                      run_start):
    # setup
    with open_database(database_url) as database:
        database.runs.start_run(run_start(register_model(database))).finish()
        with database.session(write=True) as session:
            session.execute(text("UPDATE alembic_version SET version_num = :future"), {"future": FUTURE_REVISION})
    before = _digest(sqlite_path) if database_url.startswith("sqlite") else None

    # execute
    with pytest.raises(DatabaseSchemaTooNewError, match="newer version") as raised:
        open_database(database_url)

    # assert
    assert raised.value.found_revision == FUTURE_REVISION
    if before is not None:
        assert _digest(sqlite_path) == before
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == FUTURE_REVISION
    engine.dispose()


def test_a_corrupt_file_is_reported_kept_and_can_be_moved_aside(sqlite_path: Path):
    # setup
    sqlite_path.parent.mkdir(parents=True)
    sqlite_path.write_bytes(b"this is not a database " * 200)
    original = sqlite_path.read_bytes()

    # execute
    with pytest.raises(DatabaseCorruptError, match="damaged") as raised:
        open_database(str(sqlite_path))
    moved = move_database_aside(raised.value.path)
    with open_database(str(sqlite_path)) as fresh:
        fresh_runs = fresh.runs.list_runs().total

    # assert
    assert raised.value.path == sqlite_path
    assert moved.read_bytes() == original and moved.name.startswith("studio.db.corrupt-")
    assert fresh_runs == 0


def test_a_truncated_database_is_reported_corrupt(sqlite_path: Path, register_model, run_start):
    # setup
    _make_database_with_a_run(sqlite_path, register_model, run_start, samples=200_000)
    data = sqlite_path.read_bytes()
    sqlite_path.write_bytes(data[: len(data) // 3])

    # execute / assert
    with pytest.raises(DatabaseCorruptError):
        with open_database(str(sqlite_path)) as database:
            database.runs.list_runs()


def test_moving_aside_twice_never_overwrites_an_earlier_copy(tmp_path: Path):
    # setup
    first, second = tmp_path / "studio.db", tmp_path / "studio.db"

    # execute
    first.write_bytes(b"one")
    (tmp_path / "studio.db-wal").write_bytes(b"wal")
    moved_first = move_database_aside(first)
    second.write_bytes(b"two")
    moved_second = move_database_aside(second)

    # assert
    assert moved_first != moved_second
    assert moved_first.read_bytes() == b"one" and moved_second.read_bytes() == b"two"
    assert Path(f"{moved_first}-wal").read_bytes() == b"wal"


def test_a_database_of_another_application_is_refused_and_left_untouched(sqlite_path: Path):
    # setup
    sqlite_path.parent.mkdir(parents=True)
    with sqlite3.connect(sqlite_path) as connection:
        connection.execute("CREATE TABLE contacts (name TEXT)")
    before = _digest(sqlite_path)

    # execute / assert
    with pytest.raises(NotAStudioDatabaseError, match="contacts"):
        open_database(str(sqlite_path))
    assert _digest(sqlite_path) == before


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    return locker


@pytest.mark.parametrize("from_benchmark_buffer", [False, True], ids=["appended", "read from the benchmark's buffer"])
def test_a_locked_database_is_retried_then_reported_and_the_run_saves_once_released(
        sqlite_path: Path, register_model, run_start, from_benchmark_buffer: bool):
    # setup: the writer keeps the samples given to it, or reads them from the buffer a benchmark fills
    database = open_database(str(sqlite_path), busy_timeout_s=0.05, lock_attempts=2)
    model = register_model(database)
    writer = database.runs.start_run(run_start(model), flush_interval_s=3600)
    if from_benchmark_buffer:
        buffer = GrowableColumns((np.int64, np.int64))
        writer.read_latency_from(buffer, batch_size=2)
        buffer.extend(np.arange(500), np.arange(500) + 1)
    else:
        writer.append_latency(np.arange(500), np.arange(500) + 1, batches=2)
    locker = _hold_write_lock(sqlite_path)
    try:
        # execute
        with pytest.raises(DatabaseLockedError, match="locked"):
            database.runs.start_run(run_start(model))
        with pytest.raises(DatabaseLockedError, match="500 unsaved samples are kept in memory"):
            writer.finish("completed")
        in_memory = writer.snapshot()
    finally:
        locker.rollback()
        locker.close()
    record = writer.retry_save()
    loaded = database.runs.load_run(record.id)
    database.close()

    # assert
    assert in_memory.record.status == "completed" and len(in_memory.latency) == 500
    assert loaded.record.status == "completed" and len(loaded.latency) == 500
    assert in_memory.latency.latencies_ns.tolist() == list(range(1, 501)) and set(in_memory.latency.batches) == {2}
    assert loaded.latency.timestamps_ns.tolist() == list(range(500)) and set(loaded.latency.batches) == {2}


def test_opening_a_locked_database_that_needs_a_write_is_retried_then_reported(sqlite_path: Path, register_model,
                                                                              run_start):
    # setup: a run left `running` by a dead process means opening must write
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with open_database(str(sqlite_path)) as database:
        writer = database.runs.start_run(run_start(register_model(database)))
        writer.finish("cancelled")
        with database.session(write=True) as session:
            session.execute(text("UPDATE runs SET status = 'running', writer_pid = :pid"), {"pid": int(dead.stdout)})
    locker = _hold_write_lock(sqlite_path)

    # execute / assert
    try:
        with pytest.raises(DatabaseLockedError):
            open_database(str(sqlite_path), busy_timeout_s=0.05, lock_attempts=2)
    finally:
        locker.rollback()
        locker.close()
    with open_database(str(sqlite_path)) as database:
        assert database.interrupted_at_open == (writer.run_id,)


def test_a_read_only_database_lists_runs_but_refuses_new_ones_with_a_clear_error(sqlite_path: Path, register_model,
                                                                                run_start):
    # setup
    run_id = _make_database_with_a_run(sqlite_path, register_model, run_start)
    read_only_url = f"sqlite:///file:{sqlite_path}?mode=ro&uri=true"

    # execute
    with open_database(read_only_url) as database:
        listed = [run.id for run in database.runs.list_runs().runs]
        with pytest.raises(DatabaseReadOnlyError, match="cannot be written"):
            database.runs.start_run(run_start(1))

    # assert
    assert listed == [run_id]


def test_a_read_only_database_that_needs_migrating_is_refused(sqlite_path: Path):
    # setup
    sqlite_path.parent.mkdir(parents=True)
    sqlite_path.touch()

    # execute / assert
    with pytest.raises(DatabaseReadOnlyError):
        open_database(f"sqlite:///file:{sqlite_path}?mode=ro&uri=true")


def test_a_location_that_cannot_hold_a_folder_is_reported(tmp_path: Path):
    # setup
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")

    # execute / assert
    with pytest.raises(DatabaseUnavailableError, match="not-a-folder"):
        open_database(str(blocker / "studio.db"))


def test_a_full_disk_keeps_the_samples_in_memory_for_export_or_a_later_retry(sqlite_path: Path, tmp_path: Path,
                                                                             register_model, run_start):
    # setup: cap the file at its current size, as a full disk would
    database = open_database(str(sqlite_path))
    errors = []
    writer = database.runs.start_run(run_start(register_model(database)), flush_interval_s=0.05,
                                     on_error=errors.append)
    writer.append_latency(np.arange(100), np.arange(100) + 1)
    writer.flush()
    with database.engine.connect() as connection:
        cap = {"pages": connection.exec_driver_sql("PRAGMA page_count").scalar() + 2}
    event.listen(database.engine, "connect",
                 lambda dbapi, _record: dbapi.execute(f"PRAGMA max_page_count = {cap['pages']}"))
    database.engine.dispose()
    noise = np.random.default_rng(0).integers(1, 2**40, 300_000)

    # execute
    writer.append_latency(np.arange(100, 300_100), noise)
    deadline = time.monotonic() + 10
    while writer.error is None and time.monotonic() < deadline:  # the writer thread meets the full disk
        time.sleep(0.01)
    with pytest.raises(DatabaseFullError, match="kept in memory"):
        writer.finish("completed", summary={"note": "full disk"})
    exported = export_run_data(writer.snapshot(), tmp_path / "rescued.csv", "csv")
    cap["pages"] = 1_000_000_000
    database.engine.dispose()
    record = writer.retry_save()
    loaded = database.runs.load_run(record.id)
    database.close()

    # assert
    assert errors and isinstance(errors[0], DatabaseFullError)
    assert exported.size_bytes > 0
    assert len((tmp_path / "rescued.csv").read_text().splitlines()) == 1 + 300_100
    assert loaded.record.status == "completed" and loaded.record.summary == {"note": "full disk"}
    np.testing.assert_array_equal(loaded.latency.latencies_ns[100:], noise)


def test_an_unreachable_postgres_server_is_reported(tmp_path: Path):
    with pytest.raises(DatabaseUnavailableError, match="PostgreSQL"):
        open_database(f"postgresql://nobody@/studio?host={tmp_path}", busy_timeout_s=0.5)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "not a url://x"])
def test_unusable_urls_are_reported(url: str):
    with pytest.raises(DatabaseUnavailableError):
        open_database(url)
