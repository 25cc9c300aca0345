"""The run repository: start a run (getting its writer), then list, load, annotate, compare, export, delete.

A run may carry a per-layer profile (stored apart, one JSON document per run) and may be one point of a sweep.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage import run_queries
from storage.comparison import Comparison, compare_runs
from storage.errors import (
    ComparisonError,
    DatabaseReadOnlyError,
    InvalidRequestError,
    RunNotFoundError,
    RunStateError,
    StorageError,
    SweepNotFoundError,
)
from storage.exporting import export_run_data
from storage.liveness import this_process, writer_alive
from storage.records import (
    ExportedFile,
    RunData,
    RunFilter,
    RunPage,
    RunRecord,
    RunStart,
    StoredProfile,
)
from storage.schema import (
    ExportRow,
    LatencyChunkRow,
    RunProfileRow,
    RunRow,
    RunTagRow,
    SweepRow,
    TelemetryChunkRow,
)
from storage.writer import RunWriter

if TYPE_CHECKING:
    from storage.connection import Connection

MAX_PAGE = 1000
MAX_ROW_ID = 2**63 - 1  # SQL's largest integer: a larger id cannot even be asked for


class RunRepository:
    """Plain values in, plain values out; every method is one retried transaction (or two, for exports)."""

    def __init__(self, database: Connection):
        self._database = database

    def start_run(self, start: RunStart, *, flush_interval_s: float = 0.5,
                  on_error: Callable[[StorageError], None] | None = None) -> RunWriter:
        """Writes the run row (status `running`) now and returns its writer, whose thread is already saving.

        `on_error` is called from the writer thread when background saving starts failing.
        """
        writer_identity = this_process()
        now = datetime.now(UTC)

        def work(session: Session) -> RunRecord:
            if start.sweep_id is not None and session.get(SweepRow, start.sweep_id) is None:
                raise SweepNotFoundError(f"There is no sweep {start.sweep_id} in {self._database.display_name}.")
            run = RunRow(
                model_id=start.model_id, artifact_id=start.artifact_id, device=start.device, backend=start.backend,
                provider=start.provider, provider_options=dict(start.provider_options), settings=dict(start.settings),
                status="running", started_at=now, environment=dict(start.environment), host=writer_identity.host,
                writer_pid=writer_identity.pid, writer_started=writer_identity.started, heartbeat_at=now,
                notes=start.notes, latency_count=0, telemetry_count=0, sweep_id=start.sweep_id,
                sweep_point=start.sweep_point,
            )
            session.add(run)
            session.flush()
            session.add_all(RunTagRow(run_id=run.id, tag=tag) for tag in sorted(set(start.tags)))
            session.flush()
            return run_queries.fetch_records(session, run_queries.record_query().where(RunRow.id == run.id))[0]

        record = self._database.transact(work, write=True, where=f"starting a run on {start.device}")
        return RunWriter(self._database, record, flush_interval_s=flush_interval_s, on_error=on_error)

    def _check_id(self, run_id: int) -> None:
        """An id no row can have (0, negative, past SQL's 64-bit integers) is a missing run, not a database error."""
        if not 1 <= run_id <= MAX_ROW_ID:
            raise RunNotFoundError(f"There is no run {run_id} in {self._database.display_name}.")

    def get_run(self, run_id: int) -> RunRecord:
        self._check_id(run_id)
        def work(session: Session) -> RunRecord:
            records = run_queries.fetch_records(session, run_queries.record_query().where(RunRow.id == run_id))
            if not records:
                raise RunNotFoundError(f"There is no run {run_id} in {self._database.display_name}.")
            return records[0]

        return self._database.transact(work, write=False, where=f"reading run {run_id}")

    def load_run(self, run_id: int, *, telemetry: bool = True) -> RunData:
        """The run with every latency sample and (unless told otherwise) every telemetry sample."""
        self._check_id(run_id)
        def work(session: Session) -> RunData:
            records = run_queries.fetch_records(session, run_queries.record_query().where(RunRow.id == run_id))
            if not records:
                raise RunNotFoundError(f"There is no run {run_id} in {self._database.display_name}.")
            latency = run_queries.load_latency(session, run_id)
            series = run_queries.load_telemetry(session, run_id) if telemetry else ()
            return RunData(records[0], latency, series)

        return self._database.transact(work, write=False, where=f"loading run {run_id}")

    def list_runs(self, run_filter: RunFilter | None = None, *, offset: int = 0, limit: int = 50) -> RunPage:
        """Runs matching the filter, newest first, `limit` at a time from `offset`."""
        run_filter = run_filter or RunFilter()
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise InvalidRequestError(f"the offset must be 0 or more and the limit 1 to {MAX_PAGE}; got offset "
                                      f"{offset}, limit {limit}")

        def work(session: Session) -> RunPage:
            query = run_queries.filtered(run_queries.record_query(), run_filter)
            query = query.order_by(RunRow.started_at.desc(), RunRow.id.desc()).offset(offset).limit(limit)
            runs = tuple(run_queries.fetch_records(session, query))
            return RunPage(runs, run_queries.count_matching(session, run_filter), offset, limit)

        return self._database.transact(work, write=False, where="listing runs")

    def annotate_run(self, run_id: int, *, tags: Iterable[str] | None = None, notes: str | None = None) -> RunRecord:
        self._check_id(run_id)
        """Replaces the run's tags and/or notes."""
        def work(session: Session) -> None:
            if session.get(RunRow, run_id) is None:
                raise RunNotFoundError(f"There is no run {run_id} in {self._database.display_name}.")
            if notes is not None:
                session.execute(update(RunRow).where(RunRow.id == run_id).values(notes=notes))
            if tags is not None:
                session.execute(delete(RunTagRow).where(RunTagRow.run_id == run_id))
                session.add_all(RunTagRow(run_id=run_id, tag=tag) for tag in sorted(set(tags)))

        self._database.transact(work, write=True, where=f"annotating run {run_id}")
        return self.get_run(run_id)

    def delete_run(self, run_id: int) -> None:
        """Deletes the run with its samples, tags and export records (exported files stay on disk)."""
        self._check_id(run_id)
        def work(session: Session) -> None:
            run = session.get(RunRow, run_id)
            if run is None:
                raise RunNotFoundError(f"There is no run {run_id} in {self._database.display_name}.")
            if run.status == "running" and writer_alive(run.host, run.writer_pid, run.writer_started,
                                                        run.heartbeat_at, datetime.now(UTC)):
                raise RunStateError(f"Run {run_id} is still being recorded; stop it before deleting it.")
            for table in (LatencyChunkRow, TelemetryChunkRow, RunTagRow, ExportRow, RunProfileRow):
                session.execute(delete(table).where(table.run_id == run_id))
            session.execute(delete(RunRow).where(RunRow.id == run_id))

        self._database.transact(work, write=True, where=f"deleting run {run_id}")

    def mark_interrupted_runs(self) -> tuple[int, ...]:
        """Marks `interrupted` every `running` run whose writing process is gone; returns their ids."""
        def find(session: Session) -> list[RunRow]:
            now = datetime.now(UTC)
            running = session.scalars(select(RunRow).where(RunRow.status == "running")).all()
            return [run for run in running
                    if not writer_alive(run.host, run.writer_pid, run.writer_started, run.heartbeat_at, now)]

        abandoned = self._database.transact(find, write=False, where="looking for interrupted runs")
        if not abandoned:
            return ()

        def mark(session: Session) -> tuple[int, ...]:
            marked = []
            for run in abandoned:
                error = (f"The process writing this run (pid {run.writer_pid} on {run.host}) stopped before "
                         f"finishing it; the {run.latency_count} latency samples saved until then are kept.")
                result = session.execute(
                    update(RunRow).where(RunRow.id == run.id, RunRow.status == "running")
                    .values(status="interrupted", ended_at=run.heartbeat_at or run.started_at, error=error))
                if result.rowcount:
                    marked.append(run.id)
            return tuple(marked)

        return self._database.transact(mark, write=True, where="marking interrupted runs")

    def compare(self, run_ids: Sequence[int], *, seed: int = 0) -> Comparison:
        """Compares 2 to 8 saved runs; the first is the baseline (see `storage.comparison`)."""
        if len(set(run_ids)) != len(run_ids):
            raise ComparisonError(f"each run can appear only once in a comparison, got runs {list(run_ids)}")
        return compare_runs([self.load_run(run_id, telemetry=False) for run_id in run_ids], seed=seed)

    def export_run(self, run_id: int, path: str | os.PathLike[str], file_format: str) -> ExportedFile:
        """Writes the run to `path` as csv or json (atomically) and records the export; from a read-only database the
        file is written all the same, only the record of it is not (ExportedFile.recorded)."""
        exported = export_run_data(self.load_run(run_id), path, file_format)

        def record(session: Session) -> None:
            session.add(ExportRow(run_id=run_id, path=exported.path, format=exported.format, sha256=exported.sha256,
                                  size_bytes=exported.size_bytes, created_at=datetime.now(UTC)))

        try:
            self._database.transact(record, write=True, where=f"recording the export of run {run_id}")
        except DatabaseReadOnlyError:
            return replace(exported, recorded=False)
        return exported

    def exports_of(self, run_id: int) -> tuple[ExportedFile, ...]:
        def work(session: Session) -> tuple[ExportedFile, ...]:
            rows = session.scalars(select(ExportRow).where(ExportRow.run_id == run_id).order_by(ExportRow.id))
            return tuple(ExportedFile(row.run_id, row.path, row.format, row.sha256, row.size_bytes) for row in rows)

        return self._database.transact(work, write=False, where=f"listing the exports of run {run_id}")

    def save_profile(self, run_id: int, runtime: str, profile: dict[str, Any]) -> StoredProfile:
        """Stores (or replaces) the run's per-layer profile; `profile` must be JSON-ready plain values."""
        now = datetime.now(UTC)
        document = json.loads(json.dumps(profile, allow_nan=False))  # refuse what JSON cannot hold, here and now

        def work(session: Session) -> None:
            if session.get(RunRow, run_id) is None:
                raise RunNotFoundError(f"There is no run {run_id} in {self._database.display_name}.")
            session.execute(delete(RunProfileRow).where(RunProfileRow.run_id == run_id))
            session.add(RunProfileRow(run_id=run_id, runtime=runtime, created_at=now, profile=document))

        self._database.transact(work, write=True, where=f"saving the layer profile of run {run_id}")
        return StoredProfile(run_id, runtime, now, document)

    def load_profile(self, run_id: int) -> StoredProfile | None:
        """The run's per-layer profile, or None when it was never profiled."""
        def work(session: Session) -> StoredProfile | None:
            row = session.get(RunProfileRow, run_id)
            if row is None:
                if session.get(RunRow, run_id) is None:
                    raise RunNotFoundError(f"There is no run {run_id} in {self._database.display_name}.")
                return None
            return StoredProfile(row.run_id, row.runtime, row.created_at, dict(row.profile))

        return self._database.transact(work, write=False, where=f"loading the layer profile of run {run_id}")
