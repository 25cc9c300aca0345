"""Runs the studio's jobs on worker threads and mirrors each one into the Qt-free state, on the GUI thread.

Whoever starts a job gets its JobState (its cancel event, its progress) and may pass callbacks for its result or
error; pages that care about a kind of job subscribe to the state's job events instead. A failure the user did not
ask for (a cancel is not one) is shown in the one error dialog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from studio.ui.jobs import Job, Work
from studio.ui.state import JobBoard, JobState, JobStatus
from studio.ui.widgets.error_dialog import show_error


class JobRunner(QObject):
    def __init__(self, board: JobBoard, dialog_parent: QWidget):
        super().__init__(dialog_parent)
        self.board = board
        self._dialog_parent = dialog_parent
        self._workers: dict[int, Job] = {}
        self._shut_down = False
        board.finished.connect(self._explain_failure)

    def start(self, kind: str, work: Work, on_success: Callable[[Any], None] | None = None,
              on_failure: Callable[[str], None] | None = None, *, show_progress: bool = True,
              live: Any = None, message: str = "") -> JobState:
        """Starts `work` on a worker thread; `message` says what it is doing until its first progress report."""
        state = self.board.start(kind, show_progress=show_progress, live=live, message=message)
        worker = Job(kind, work, state.cancel, parent=self,
                     on_progress=lambda fraction, message: self.board.progress(state, fraction, message),
                     on_finished=lambda job: self._finish(state, job, on_success, on_failure))
        self._workers[state.id] = worker
        worker.start()
        return state

    @property
    def idle(self) -> bool:
        """No worker thread left: every job has ended and its end has reached the state."""
        return not self._workers

    def shut_down(self, timeout_s: float) -> None:
        """Asks every job to stop and waits for them; what they still report is dropped, as the window is going."""
        self._shut_down = True
        self.board.cancel_all()
        for job_id, worker in list(self._workers.items()):
            if worker.wait(timeout_s):
                del self._workers[job_id]

    def _finish(self, state: JobState, worker: Job, on_success, on_failure) -> None:
        self._workers.pop(state.id, None)  # gone already when shut_down saw its thread end
        worker.deleteLater()
        if self._shut_down:
            return
        if worker.error is None:
            self.board.succeed(state, worker.result)
            if on_success is not None:
                on_success(worker.result)
            return
        message, details = worker.error
        self.board.fail(state, message, details)
        if on_failure is not None:
            on_failure(message)

    def _explain_failure(self, job: JobState) -> None:
        if job.status is JobStatus.FAILED:  # stopping is what the user asked for, not an error
            show_error(self._dialog_parent, f"{job.kind.capitalize()} failed", job.error, job.details)
