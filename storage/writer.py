"""The run writer: takes samples from the benchmark and telemetry threads and saves them in the background.

A run produces samples far faster than one transaction each could keep up with, and a crash must lose at most
half a second of them. So appends only copy into memory (or, for a benchmark, the writer reads the benchmark's
own sample buffer: `read_latency_from`), and a writer thread saves everything new at least every
`flush_interval_s` in one transaction (packed chunks plus the run's counters and heartbeat). When saving
fails (disk full, read-only, locked) the samples stay in memory, the thread keeps retrying, `finish` raises the
typed error, and the caller can `retry_save()` later or export `snapshot()` instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from core.growable import GrowableColumns
from storage import packing
from storage.errors import RunNotFoundError, RunStateError, StorageError
from storage.liveness import HEARTBEAT_EVERY
from storage.records import (
    EnergyFigure,
    LatencySamples,
    RunData,
    RunRecord,
    TelemetrySeries,
)
from storage.sample_memory import (
    LATENCY_DTYPES,
    TELEMETRY_DTYPES,
    KeptRows,
    as_latency_columns,
    as_telemetry_columns,
)
from storage.schema import LatencyChunkRow, RunRow, TelemetryChunkRow
from storage.statuses import FINISHED_STATUSES

if TYPE_CHECKING:
    from storage.connection import Connection

CHUNK_SIZE = 65_536  # samples per chunk row: large enough to compress well, small enough to stream


@dataclass(frozen=True)
class _Outcome:
    status: str
    ended_at: datetime
    summary: dict[str, Any] | None
    telemetry_summary: dict[str, Any] | None
    energy: tuple[EnergyFigure, ...]
    error: str | None


class RunWriter:
    """Created by `RunRepository.start_run`; thread-safe appends; `finish` exactly once."""

    def __init__(self, database: Connection, record: RunRecord, *, flush_interval_s: float = 0.5,
                 on_error: Callable[[StorageError], None] | None = None):
        self.run_id = record.id
        self._database = database
        self._initial = record
        self._interval = flush_interval_s
        self._on_error = on_error
        self._latency = KeptRows(GrowableColumns(LATENCY_DTYPES, 4096))
        self._telemetry: dict[tuple[str, str], KeptRows] = {}
        self._lock = threading.Lock()  # guards the in-memory samples and the outcome
        self._save_lock = threading.Lock()  # one transaction at a time, in sample order
        self._next_latency_seq = 0
        self._next_telemetry_seq = 0
        self._last_heartbeat = time.monotonic()
        self._error: StorageError | None = None
        self._thread_failure: BaseException | None = None
        self._outcome: _Outcome | None = None
        self._outcome_saved = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"storage-run-writer-{record.id}", daemon=True)
        self._thread.start()
        database.register_writer(self)

    # ---- appending (any thread) -------------------------------------------------------------------------------

    def append_latency(self, timestamps_ns: object, latencies_ns: object, batches: object = 1) -> None:
        """Adds timed iterations (arrays or scalars, nanoseconds); `batches` may be one size for all."""
        columns = as_latency_columns(timestamps_ns, latencies_ns, batches)
        with self._lock:
            self._check_open()
            if self._latency.shared:
                raise RunStateError(f"run {self.run_id} reads its latency samples from the benchmark's buffer")
            self._latency.extend(*columns)

    def read_latency_from(self, samples: GrowableColumns, batch_size: int) -> None:
        """Saves the rows of `samples` (start and latency in ns, `batch_size` items each) as the run's latency.

        The benchmark keeps every sample in `samples` anyway, so reading them there instead of taking copies holds
        a run's samples once. Nothing is lost for it: what the database refuses stays in `samples`, which this
        writer keeps until `retry_save` or `snapshot`. Call it before the benchmark appends; the run then takes
        no `append_latency`, and `finish` ends it at the rows there by then.
        """
        with self._lock:
            self._check_open()
            if len(self._latency):
                raise RunStateError(f"run {self.run_id} already holds latency samples of its own")
            self._latency = KeptRows(samples, batch_size=batch_size)

    def append_telemetry(self, metric: str, device: str, timestamps_ns: object, values: object) -> None:
        """Adds readings of one metric on one device, e.g. ("power_w", "gpu0", [t0, t1], [61.5, 63.0])."""
        columns = as_telemetry_columns(timestamps_ns, values)
        with self._lock:
            self._check_open()
            kept = self._telemetry.get((metric, device))
            if kept is None:
                kept = self._telemetry[(metric, device)] = KeptRows(GrowableColumns(TELEMETRY_DTYPES, 256))
            kept.extend(*columns)

    # ---- state --------------------------------------------------------------------------------------------------

    @property
    def is_active(self) -> bool:
        """True until `finish` is called."""
        return self._outcome is None

    @property
    def is_saved(self) -> bool:
        """True once the finished run, with every sample, is in the database."""
        return self._outcome_saved

    @property
    def error(self) -> StorageError | None:
        """The last saving failure, cleared by the next successful save."""
        return self._error

    @property
    def saved_latency_count(self) -> int:
        with self._lock:
            return self._latency.saved

    @property
    def unsaved_count(self) -> int:
        """Samples (latency and telemetry) held only in memory so far."""
        with self._lock:
            return self._latency.unsaved + sum(series.unsaved for series in self._telemetry.values())

    # ---- saving -------------------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Saves everything appended so far now, in the caller's thread; raises the typed error on failure."""
        self._save_or_keep(None)

    def finish(self, status: str = "completed", *, summary: dict[str, Any] | None = None,
               telemetry_summary: dict[str, Any] | None = None, energy: Iterable[EnergyFigure] = (),
               error: str | None = None) -> RunRecord:
        """Stops the writer thread and saves the remaining samples with the outcome, in one transaction.

        `status` is completed, cancelled or failed (failed needs `error`). On a storage failure the typed error
        is raised, the samples stay in memory and `retry_save()` or `snapshot()` remain available.
        """
        if status not in FINISHED_STATUSES:
            raise ValueError(f"a run finishes as one of {', '.join(FINISHED_STATUSES)}, not {status!r}")
        if status == "failed" and not error:
            raise ValueError("a failed run needs the error that stopped it")
        with self._lock:
            if self._outcome is not None:
                raise RunStateError(f"run {self.run_id} was already finished as {self._outcome.status}")
            self._outcome = _Outcome(status, datetime.now(UTC), summary, telemetry_summary, tuple(energy), error)
            self._latency.close()
        self._stop.set()
        self._thread.join()
        if self._thread_failure is not None:
            raise RuntimeError(f"the writer thread of run {self.run_id} failed") from self._thread_failure
        return self.retry_save()

    def retry_save(self) -> RunRecord:
        """Saves what `finish` could not (after the user freed space, for instance); returns the stored record."""
        if self._outcome is None:
            raise RunStateError(f"run {self.run_id} is still running: call finish() first")
        if not self._outcome_saved:
            self._save_or_keep(self._outcome)
            self._outcome_saved = True
        return self.snapshot_record()

    def snapshot_record(self) -> RunRecord:
        """The run as it stands in memory (outcome and counts included), whether or not it is saved yet."""
        with self._lock:
            return self._record_locked()

    def snapshot(self) -> RunData:
        """Every sample given so far, from memory: export it when the database cannot take it."""
        with self._lock:
            timestamps, latencies, batches = self._latency.rows()
            series = tuple(TelemetrySeries(metric, device, *columns.rows())
                           for (metric, device), columns in self._telemetry.items())
            return RunData(self._record_locked(), LatencySamples(timestamps, latencies, batches), series)

    def _record_locked(self) -> RunRecord:
        outcome = self._outcome
        counts = {"latency_count": len(self._latency),
                  "telemetry_count": sum(len(series) for series in self._telemetry.values())}
        if outcome is None:
            return replace(self._initial, **counts)
        return replace(self._initial, status=outcome.status, ended_at=outcome.ended_at, error=outcome.error,
                       summary=outcome.summary, telemetry_summary=outcome.telemetry_summary, energy=outcome.energy,
                       **counts)

    def _check_open(self) -> None:
        if self._outcome is not None:
            raise RunStateError(f"run {self.run_id} is finished; it takes no more samples")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._save_or_keep(None, periodic=True)
            except StorageError:
                continue  # kept in self._error and reported through on_error; the next tick retries
            except BaseException as failure:  # noqa: BLE001 - handed to finish(), which re-raises it
                self._thread_failure = failure
                return

    def _save_or_keep(self, outcome: _Outcome | None, *, periodic: bool = False) -> None:
        try:
            self._save(outcome, periodic=periodic)
        except StorageError as failure:
            kept = self.unsaved_count
            failure.reason = str(failure)  # without the hint below, for callers that do not keep the writer
            failure.args = (f"{failure} The run's {kept} unsaved samples are kept in memory: retry saving, "
                            "or export the run.",)
            first = self._error is None
            self._error = failure
            if periodic and first and self._on_error is not None:
                self._on_error(failure)
            raise
        self._error = None

    def _save(self, outcome: _Outcome | None, *, periodic: bool) -> None:
        with self._save_lock:
            with self._lock:
                latency_end = len(self._latency)
                latency = self._latency.rows(self._latency.saved, latency_end)
                telemetry_ends = {key: len(columns) for key, columns in self._telemetry.items()}
                telemetry = {key: columns.rows(columns.saved, telemetry_ends[key])
                             for key, columns in self._telemetry.items() if columns.unsaved}
            heartbeat_due = time.monotonic() - self._last_heartbeat >= HEARTBEAT_EVERY.total_seconds()
            if periodic and not latency[0].size and not telemetry and not heartbeat_due:
                return
            latency_rows = _latency_chunk_rows(self.run_id, self._next_latency_seq, *latency)
            telemetry_rows = _telemetry_chunk_rows(self.run_id, self._next_telemetry_seq, telemetry)
            values: dict[str, Any] = {"latency_count": latency_end, "telemetry_count": sum(telemetry_ends.values()),
                                      "heartbeat_at": datetime.now(UTC)}
            if outcome is not None:
                values.update(status=outcome.status, ended_at=outcome.ended_at, error=outcome.error,
                              summary=outcome.summary, telemetry_summary=outcome.telemetry_summary,
                              energy=[_energy_dict(figure) for figure in outcome.energy])

            def work(session: Session) -> None:
                if latency_rows:
                    session.execute(insert(LatencyChunkRow), latency_rows)
                if telemetry_rows:
                    session.execute(insert(TelemetryChunkRow), telemetry_rows)
                updated = session.execute(update(RunRow).where(RunRow.id == self.run_id).values(**values))
                if updated.rowcount != 1:
                    raise RunNotFoundError(f"run {self.run_id} was deleted while it was being written")

            self._database.transact(work, write=True, where=f"saving run {self.run_id}")
            with self._lock:
                self._latency.saved = latency_end
                for key, end in telemetry_ends.items():
                    self._telemetry[key].saved = end
            self._next_latency_seq += len(latency_rows)
            self._next_telemetry_seq += len(telemetry_rows)
            self._last_heartbeat = time.monotonic()


def _latency_chunk_rows(run_id: int, first_seq: int, timestamps: np.ndarray, latencies: np.ndarray,
                        batches: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for offset in range(0, timestamps.size, CHUNK_SIZE):
        part = slice(offset, offset + CHUNK_SIZE)
        rows.append({
            "run_id": run_id, "seq": first_seq + len(rows), "codec": packing.CURRENT_CODEC,
            "count": int(timestamps[part].size),
            "timestamps": packing.pack(timestamps[part], packing.INT64, delta=True),
            "latencies": packing.pack(latencies[part], packing.INT64),
            "batches": packing.pack(batches[part], packing.INT32),
        })
    return rows


def _telemetry_chunk_rows(run_id: int, first_seq: int, telemetry: dict[tuple[str, str], tuple[np.ndarray, ...]]
                          ) -> list[dict[str, Any]]:
    rows = []
    for (metric, device), (timestamps, values) in telemetry.items():
        for offset in range(0, timestamps.size, CHUNK_SIZE):
            part = slice(offset, offset + CHUNK_SIZE)
            rows.append({
                "run_id": run_id, "seq": first_seq + len(rows), "metric": metric, "device": device,
                "codec": packing.CURRENT_CODEC, "count": int(timestamps[part].size),
                "timestamps": packing.pack(timestamps[part], packing.INT64, delta=True),
                "values": packing.pack(values[part], packing.FLOAT64),
            })
    return rows


def _energy_dict(figure: EnergyFigure) -> dict[str, Any]:
    return {"device": figure.device, "source": figure.source, "joules_per_inference": figure.joules_per_inference,
            "total_joules": figure.total_joules, "unavailable_reason": figure.unavailable_reason}
