"""A job's life through the runner and the state, as the pages see it: start → progress → result, start → error →
the error dialog, and a cancel that is not an error."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QWidget

from engine.errors import InputError
from studio.ui.job_runner import JobRunner
from studio.ui.state import AppState, JobStatus
from tests.studio.ui.conftest import JOB_TIMEOUT_MS, error_dialogs


@pytest.fixture
def runner(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    job_runner = JobRunner(AppState().jobs, parent)
    yield job_runner
    job_runner.board.cancel_all()
    qtbot.waitUntil(lambda: job_runner.idle, timeout=JOB_TIMEOUT_MS)
    for dialog in error_dialogs():
        dialog.close()


def _record(board) -> list:
    events: list = []
    board.started.connect(lambda job: events.append(("started", job.kind, job.message)))
    board.progressed.connect(lambda job: events.append(("progressed", job.fraction, job.message)))
    board.finished.connect(lambda job: events.append(("finished", job.status, job.result, job.error)))
    return events


def test_start_progress_result(qtbot, runner):
    # setup
    events, results = _record(runner.board), []

    def work(cancel, progress):
        progress(0.5, "half way")
        return 42

    # execute
    job = runner.start("export", work, results.append, message="Exporting…")
    qtbot.waitUntil(lambda: runner.idle, timeout=JOB_TIMEOUT_MS)

    # assert
    assert events == [("started", "export", "Exporting…"), ("progressed", 0.5, "half way"),
                      ("finished", JobStatus.SUCCEEDED, 42, None)]
    assert results == [42] and job.status is JobStatus.SUCCEEDED and runner.board.latest["export"] == 42
    assert not error_dialogs()


def test_start_error_dialog(qtbot, runner):
    # setup
    events, failures = _record(runner.board), []

    def work(cancel, progress):
        raise InputError("the model file is not a readable ONNX file")

    # execute
    runner.start("open", work, on_failure=failures.append)
    qtbot.waitUntil(lambda: runner.idle and bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)

    # assert
    dialog = error_dialogs()[0]
    assert events[-1] == ("finished", JobStatus.FAILED, None, "the model file is not a readable ONNX file")
    assert failures == ["the model file is not a readable ONNX file"]
    assert dialog.windowTitle() == "Open failed" and "InputError" in dialog.detailedText()


def test_cancel_is_not_an_error(qtbot, runner):
    # setup
    events = _record(runner.board)

    def work(cancel, progress):
        progress(0.1, "working")
        cancel.wait(JOB_TIMEOUT_MS / 1000)
        raise InputError("stopped by the user: nothing written")

    job = runner.start("optimize", work)
    qtbot.waitUntil(lambda: bool(events) and events[-1][0] == "progressed", timeout=JOB_TIMEOUT_MS)

    # execute
    asked = runner.board.cancel("optimize")
    qtbot.waitUntil(lambda: runner.idle, timeout=JOB_TIMEOUT_MS)

    # assert
    assert asked and job.status is JobStatus.CANCELLED and not error_dialogs()
    assert events[-1] == ("finished", JobStatus.CANCELLED, None, "stopped by the user: nothing written")


def test_after_shut_down_nothing_more_reaches_the_state(qtbot, runner):
    # setup
    events = _record(runner.board)
    runner.start("sweep", lambda cancel, progress: cancel.wait(JOB_TIMEOUT_MS / 1000))

    # execute
    runner.shut_down(JOB_TIMEOUT_MS / 1000)
    qtbot.wait(50)  # the worker's last signals, had they been delivered

    # assert
    assert events == [("started", "sweep", "")] and runner.idle


@pytest.mark.parametrize("stop", [SystemExit(3), GeneratorExit()])
def test_user_code_that_exits_is_an_error_dialog_not_a_silent_end(qtbot, runner, stop):
    # setup
    def work(cancel, progress):
        raise stop

    # execute
    job = runner.start("run", work)
    qtbot.waitUntil(lambda: runner.idle and bool(error_dialogs()), timeout=JOB_TIMEOUT_MS)

    # assert
    assert job.status is JobStatus.FAILED and type(stop).__name__ in error_dialogs()[0].detailedText()
