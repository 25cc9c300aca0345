"""The sweep repository: a sweep record, the runs that are its points, and what a resumed sweep may skip.

A sweep's points are ordinary runs carrying the sweep's id and the point's key, so every run view (history,
compare, export) works on them unchanged. A point counts as done when one of its runs completed; cancelled,
failed and interrupted runs are measured again on resume. Like runs, a sweep records the process running it,
so a sweep whose process died is marked `interrupted` on the next open instead of looking forever `running`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage import run_queries
from storage.errors import RunStateError, SweepNotFoundError
from storage.liveness import this_process, writer_alive
from storage.records import RunRecord, StoredModel, SweepRecord, SweepStart
from storage.schema import ModelRow, RunRow, SweepRow
from storage.statuses import FINISHED_STATUSES

if TYPE_CHECKING:
    from storage.connection import Connection

MAX_LISTED = 1000


class SweepRepository:
    """Plain values in, plain values out; each method is one retried transaction."""

    def __init__(self, database: Connection):
        self._database = database

    def create_sweep(self, start: SweepStart) -> SweepRecord:
        """Writes the sweep (status `running`, owned by this process) and returns it."""
        identity = this_process()
        now = datetime.now(UTC)

        def work(session: Session) -> int:
            row = SweepRow(model_id=start.model_id, status="running", settings=dict(start.settings), seed=start.seed,
                           created_at=now, notes=start.notes, host=identity.host, writer_pid=identity.pid,
                           writer_started=identity.started, heartbeat_at=now)
            session.add(row)
            session.flush()
            return row.id

        sweep_id = self._database.transact(work, write=True, where="creating a sweep")
        return self.get_sweep(sweep_id)

    def get_sweep(self, sweep_id: int) -> SweepRecord:
        def work(session: Session) -> SweepRecord:
            found = _records(session, select(SweepRow).where(SweepRow.id == sweep_id))
            if not found:
                raise SweepNotFoundError(f"There is no sweep {sweep_id} in {self._database.display_name}.")
            return found[0]

        return self._database.transact(work, write=False, where=f"reading sweep {sweep_id}")

    def list_sweeps(self, *, limit: int = 50) -> tuple[SweepRecord, ...]:
        """The newest sweeps first."""
        if not 1 <= limit <= MAX_LISTED:
            raise ValueError(f"limit must be between 1 and {MAX_LISTED}")

        def work(session: Session) -> tuple[SweepRecord, ...]:
            query = select(SweepRow).order_by(SweepRow.created_at.desc(), SweepRow.id.desc()).limit(limit)
            return tuple(_records(session, query))

        return self._database.transact(work, write=False, where="listing sweeps")

    def resume_sweep(self, sweep_id: int) -> SweepRecord:
        """Takes the sweep over for this process (status `running` again); refuses one another process is running."""
        identity = this_process()
        now = datetime.now(UTC)

        def work(session: Session) -> None:
            row = session.get(SweepRow, sweep_id)
            if row is None:
                raise SweepNotFoundError(f"There is no sweep {sweep_id} in {self._database.display_name}.")
            mine = (row.host, row.writer_pid) == (identity.host, identity.pid)
            if row.status == "running" and not mine and _alive(session, row, now):
                raise RunStateError(f"Sweep {sweep_id} is still being run by process {row.writer_pid} on {row.host}.")
            row.status, row.ended_at, row.heartbeat_at = "running", None, now
            row.host, row.writer_pid, row.writer_started = identity.host, identity.pid, identity.started

        self._database.transact(work, write=True, where=f"resuming sweep {sweep_id}")
        return self.get_sweep(sweep_id)

    def finish_sweep(self, sweep_id: int, status: str, *, summary: dict[str, Any] | None = None) -> SweepRecord:
        """Records how the sweep (or this session of it) ended, with its analysis."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"a sweep finishes as one of {', '.join(FINISHED_STATUSES)}, not {status!r}")
        now = datetime.now(UTC)

        def work(session: Session) -> None:
            row = session.get(SweepRow, sweep_id)
            if row is None:
                raise SweepNotFoundError(f"There is no sweep {sweep_id} in {self._database.display_name}.")
            row.status, row.ended_at, row.heartbeat_at = status, now, now
            if summary is not None:
                row.summary = dict(summary)

        self._database.transact(work, write=True, where=f"finishing sweep {sweep_id}")
        return self.get_sweep(sweep_id)

    def sweep_runs(self, sweep_id: int) -> tuple[RunRecord, ...]:
        """Every run of the sweep, any status, oldest first (a point measured twice appears twice)."""
        def work(session: Session) -> tuple[RunRecord, ...]:
            if session.get(SweepRow, sweep_id) is None:
                raise SweepNotFoundError(f"There is no sweep {sweep_id} in {self._database.display_name}.")
            query = run_queries.record_query().where(RunRow.sweep_id == sweep_id).order_by(RunRow.id)
            return tuple(run_queries.fetch_records(session, query))

        return self._database.transact(work, write=False, where=f"listing the runs of sweep {sweep_id}")

    def completed_points(self, sweep_id: int) -> dict[str, int]:
        """Point key -> id of its latest completed run: the points a resumed sweep skips."""
        return {run.sweep_point: run.id for run in self.sweep_runs(sweep_id)
                if run.status == "completed" and run.sweep_point is not None}

    def mark_interrupted_sweeps(self) -> tuple[int, ...]:
        """Marks `interrupted` every `running` sweep whose process is gone; returns their ids."""
        now = datetime.now(UTC)

        def work(session: Session) -> tuple[int, ...]:
            marked = []
            for row in session.scalars(select(SweepRow).where(SweepRow.status == "running")).all():
                if not _alive(session, row, now):
                    session.execute(update(SweepRow).where(SweepRow.id == row.id, SweepRow.status == "running")
                                    .values(status="interrupted", ended_at=row.heartbeat_at or row.created_at))
                    marked.append(row.id)
            return tuple(marked)

        return self._database.transact(work, write=True, where="marking interrupted sweeps")


def _alive(session: Session, row: SweepRow, now: datetime) -> bool:
    """Whether the sweep's process may still run it: by pid on this host, else by the freshest heartbeat."""
    latest_run = session.scalar(select(func.max(RunRow.heartbeat_at)).where(RunRow.sweep_id == row.id))
    heartbeat = max((t for t in (row.heartbeat_at, latest_run) if t is not None), default=None)
    return writer_alive(row.host, row.writer_pid, row.writer_started, heartbeat, now)


def _records(session: Session, query) -> list[SweepRecord]:
    rows = session.scalars(query).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    counts = dict(session.execute(select(RunRow.sweep_id, func.count()).where(RunRow.sweep_id.in_(ids))
                                  .group_by(RunRow.sweep_id)).all())
    model_ids = {row.model_id for row in rows if row.model_id is not None}
    models = {m.id: m for m in session.scalars(select(ModelRow).where(ModelRow.id.in_(model_ids)))} if model_ids else {}
    return [SweepRecord(
        id=row.id, status=row.status,
        model=(StoredModel(models[row.model_id].id, models[row.model_id].path, models[row.model_id].sha256,
                           models[row.model_id].format) if row.model_id in models else None),
        settings=dict(row.settings), seed=row.seed, created_at=row.created_at, ended_at=row.ended_at,
        summary=row.summary, notes=row.notes, host=row.host, run_count=int(counts.get(row.id, 0)),
    ) for row in rows]
