"""Use cases on saved runs (list, show, annotate, compare, export, delete): they read only from storage, so they
work on runs from earlier sessions and other machines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import storage
from storage import Comparison, ExportedFile, RunData, RunFilter, RunPage, RunRecord, StorageError

if TYPE_CHECKING:  # SQLAlchemy loads when a database is opened, not when the CLI starts
    from storage import Database


def open_store(url: str | None = None) -> Database:
    """The runs database at `url`, $AUTOGLM_STUDIO_DB or the default, migrated; crashed runs marked interrupted."""
    return storage.open_database(url)


def list_runs(db_url: str | None, run_filter: RunFilter | None = None, *, offset: int = 0, limit: int = 50) -> RunPage:
    with open_store(db_url) as db:
        return db.runs.list_runs(run_filter, offset=offset, limit=limit)


def load_run(db_url: str | None, run_id: int, *, telemetry: bool = False) -> RunData:
    with open_store(db_url) as db:
        return db.runs.load_run(run_id, telemetry=telemetry)


def annotate_run(db_url: str | None, run_id: int, *, tags: list[str] | None = None, notes: str | None = None) -> None:
    with open_store(db_url) as db:
        db.runs.annotate_run(run_id, tags=tags, notes=notes)


def compare_runs(db_url: str | None, run_ids: list[int]) -> Comparison:
    """Side by side, the first run as the baseline: ratio of medians with a bootstrap 95% interval."""
    with open_store(db_url) as db:
        return db.runs.compare(run_ids)


@dataclass(frozen=True)
class ComparisonView:
    comparison: Comparison
    latencies_ms: dict[int, np.ndarray]  # every sample of each run, for CDF and histogram overlays


def compare_with_samples(db_url: str | None, run_ids: list[int]) -> ComparisonView:
    with open_store(db_url) as db:
        comparison = db.runs.compare(run_ids)
        samples = {run_id: db.runs.load_run(run_id, telemetry=False).latency.latencies_ns / 1e6 for run_id in run_ids}
    return ComparisonView(comparison, samples)


def export_run(db_url: str | None, run_id: int, path: str, file_format: str) -> ExportedFile:
    with open_store(db_url) as db:
        return db.runs.export_run(run_id, path, file_format)


def delete_run(db_url: str | None, run_id: int) -> None:
    with open_store(db_url) as db:
        db.runs.delete_run(run_id)


def import_run_file(db_url: str | None, path: str) -> RunRecord:
    """A run exported to JSON (the file `bench` writes when saving failed, or `runs export`), saved again."""
    with open_store(db_url) as db:
        return storage.import_run(db, path)


def move_store_aside(db_url: str | None) -> Path:
    """Renames a damaged SQLite database (never deletes it) so a fresh one can be created."""
    url = storage.resolve_database_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise StorageError(f"only a SQLite file can be moved aside; {url.render_as_string(hide_password=True)} is a server")
    return storage.move_database_aside(url.database)
