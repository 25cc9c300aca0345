"""The jobs the studio is running, and the latest result of each kind, as plain observable data.

A job's life: `start` (running) → any number of `progress` → `succeed` (its result), or `fail` (its error, or
cancelled when the user had asked it to stop: stopping is not an error). The cancel event lives here, so asking a
job to stop needs no Qt and no reference to the worker thread that runs it.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from studio.ui.state.events import Event


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class JobState:
    id: int
    kind: str  # what it does: "run", "optimize", "generate", "export", "sweep", "profile", "open", …
    show_progress: bool = True  # False: quick helper jobs that would only flicker the progress bar
    live: Any = None  # what the work streams into while it runs, for live views (a LiveFeed, a sample buffer)
    cancel: threading.Event = field(default_factory=threading.Event)
    status: JobStatus = JobStatus.RUNNING
    fraction: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    details: str = ""  # the traceback of an error, for the dialog's "Show Details…"

    @property
    def running(self) -> bool:
        return self.status is JobStatus.RUNNING


class JobBoard:
    """Current jobs by id, and the latest successful result of each kind (`latest["run"]`)."""

    def __init__(self) -> None:
        self.current: dict[int, JobState] = {}
        self.latest: dict[str, Any] = {}
        self.started = Event()  # JobState
        self.progressed = Event()  # JobState
        self.finished = Event()  # JobState: succeeded, failed or cancelled
        self._ids = itertools.count(1)

    def start(self, kind: str, *, show_progress: bool = True, live: Any = None, message: str = "") -> JobState:
        job = JobState(next(self._ids), kind, show_progress, live, message=message)
        self.current[job.id] = job
        self.started.emit(job)
        return job

    def progress(self, job: JobState, fraction: float, message: str) -> None:
        job.fraction, job.message = fraction, message
        self.progressed.emit(job)

    def succeed(self, job: JobState, result: Any) -> None:
        job.status, job.result, job.fraction = JobStatus.SUCCEEDED, result, 1.0
        self.latest[job.kind] = result
        self._end(job)

    def fail(self, job: JobState, message: str, details: str = "") -> None:
        job.status = JobStatus.CANCELLED if job.cancel.is_set() else JobStatus.FAILED
        job.error, job.details = message, details
        self._end(job)

    def cancel(self, kind: str) -> bool:
        """Asks every running job of this kind to stop (within one iteration); False when none runs."""
        jobs = self.running(kind)
        for job in jobs:
            job.cancel.set()
        return bool(jobs)

    def cancel_all(self) -> None:
        for job in self.current.values():
            job.cancel.set()

    def running(self, kind: str | None = None) -> list[JobState]:
        return [job for job in self.current.values() if kind is None or job.kind == kind]

    def is_running(self, kind: str) -> bool:
        return bool(self.running(kind))

    def _end(self, job: JobState) -> None:
        del self.current[job.id]
        self.finished.emit(job)
