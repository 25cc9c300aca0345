"""Opening runs the shipped Alembic migrations: from an empty database to a schema identical to the ORM classes."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import open_database
from storage.migrate import head_revision
from storage.schema import Base

EXPECTED_TABLES = {"alembic_version", "models", "recipes", "artifacts", "runs", "run_tags", "latency_chunks",
                   "telemetry_chunks", "exports"}


def test_opening_an_empty_database_migrates_it_to_the_head_revision(database_url: str):
    # execute
    with open_database(database_url) as database:
        engine = database.engine
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            revisions = MigrationContext.configure(connection).get_current_heads()

    # assert
    assert EXPECTED_TABLES <= tables
    assert revisions == (head_revision(),)


def test_migrated_schema_matches_the_orm_classes(database_url: str):
    # setup
    with open_database(database_url) as database:
        with database.engine.connect() as connection:
            # execute
            differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                           Base.metadata)

    # assert
    assert differences == []


def test_reopening_a_current_database_keeps_its_runs(database_url: str, register_model, run_start):
    # setup
    with open_database(database_url) as database:
        writer = database.runs.start_run(run_start(register_model(database)))
        writer.append_latency([1, 2, 3], [10, 20, 30])
        run_id = writer.finish().id

    # execute
    with open_database(database_url) as database:
        loaded = database.runs.load_run(run_id)

    # assert
    assert loaded.record.status == "completed"
    assert loaded.latency.latencies_ns.tolist() == [10, 20, 30]


def test_sqlite_connections_use_wal_normal_sync_foreign_keys_and_a_busy_timeout(sqlite_path: Path):
    # execute
    with open_database(str(sqlite_path), busy_timeout_s=1.5) as database:
        with database.engine.connect() as connection:
            pragmas = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                       for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}

    # assert
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 1500}
