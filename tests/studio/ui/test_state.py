"""The GUI's application state without Qt: it must import and work with PySide6 absent (the Qt-free test job)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.model.handle import ModelFormat, ModelHandle
from engine.model.tensors import TensorSpec
from engine.optimize.recipe import Recipe
from studio.ui.state import (
    AppState,
    Event,
    InputChoice,
    JobBoard,
    JobStatus,
    RunSettings,
)
from tests.conftest import REPO


def _handle(tmp_path: Path, *, shapes_recorded: bool = True) -> ModelHandle:
    inputs = (TensorSpec("input_ids", "int64", ("batch", "sequence") if shapes_recorded else None),)
    return ModelHandle(path=tmp_path / "model.onnx", format=ModelFormat.ONNX, sha256="0" * 64, size_bytes=1,
                       inputs=inputs, outputs=(TensorSpec("logits", "float32", ("batch", 2)),), parameter_count=0,
                       op_histogram={})


def test_the_state_imports_with_qt_unimportable():
    # setup: in a fresh interpreter, so Qt loaded by other tests cannot hide an import of it
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ("PySide6", "shiboken6", "pyqtgraph"))

    # execute
    run = subprocess.run([sys.executable, "-c", f"import sys; {blocked}; import studio.ui.state"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)

    # assert
    assert run.returncode == 0, run.stderr


def test_events_call_subscribers_in_order_until_they_disconnect():
    # setup
    event, calls = Event(), []
    first = event.connect(lambda value: calls.append(("first", value)))
    event.connect(lambda value: calls.append(("second", value)))

    # execute
    event.emit(1)
    event.disconnect(first)
    event.emit(2)

    # assert
    assert calls == [("first", 1), ("second", 1), ("second", 2)]


def test_a_job_runs_start_progress_result():
    # setup
    board, seen = JobBoard(), []
    for name in ("started", "progressed", "finished"):
        getattr(board, name).connect(lambda job, name=name: seen.append((name, job.status, job.fraction, job.message)))

    # execute
    job = board.start("run", message="Running model.onnx on cpu…")
    board.progress(job, 0.5, "half way")
    board.succeed(job, "the report")

    # assert
    assert seen == [("started", JobStatus.RUNNING, 0.0, "Running model.onnx on cpu…"),
                    ("progressed", JobStatus.RUNNING, 0.5, "half way"),
                    ("finished", JobStatus.SUCCEEDED, 1.0, "half way")]
    assert job.result == "the report" and board.latest == {"run": "the report"} and not board.current


def test_a_job_that_raises_fails_with_its_error():
    # setup
    board = JobBoard()
    job = board.start("optimize")

    # execute
    board.fail(job, "calibration found no activations", "Traceback …")

    # assert
    assert job.status is JobStatus.FAILED and job.error == "calibration found no activations"
    assert job.details == "Traceback …" and "optimize" not in board.latest and not board.is_running("optimize")


def test_cancel_asks_the_running_jobs_of_a_kind_and_their_failure_is_a_cancel():
    # setup
    board = JobBoard()
    sweep, run = board.start("sweep"), board.start("run")

    # execute
    asked = board.cancel("sweep")
    board.fail(sweep, "stopped by the user")

    # assert
    assert asked and sweep.cancel.is_set() and not run.cancel.is_set()
    assert sweep.status is JobStatus.CANCELLED and board.running() == [run]
    assert not board.cancel("export")  # nothing of that kind runs


def test_opening_a_model_leaves_its_dims_to_the_engine_until_the_user_sets_them(tmp_path):
    # setup
    state, opened = AppState(), []
    state.model_opened.connect(opened.append)

    # execute
    state.open(_handle(tmp_path))

    # assert
    assert opened == [state.model] and state.model.inputs == InputChoice(dims={}, shapes={})
    assert state.model.location == str(tmp_path / "model.onnx")


def test_the_bench_request_comes_from_the_model_and_the_run_settings(tmp_path):
    # setup
    state, changes = AppState(db_url="sqlite:///runs.db"), []
    state.run_settings_changed.connect(changes.append)
    state.open(_handle(tmp_path))
    state.choose_inputs(InputChoice(dims={"sequence": 16}, seed=7))
    state.update_run_settings(batch=4, threads=2, telemetry_hz=0, scenario="server", rate_qps=50.0)

    # execute
    request = state.bench_request()

    # assert
    assert len(changes) == 1 and changes[0].batch == 4
    assert request.model == str(tmp_path / "model.onnx") and request.db_url == "sqlite:///runs.db"
    assert request.inputs.dims == {"sequence": 16} and request.inputs.batch == 4 and request.inputs.seed == 7
    assert request.options.threads == 2 and request.telemetry_hz is None
    assert request.scenario.scenario == "server" and request.scenario.target_qps == 50.0


def test_a_malformed_shape_fails_before_any_run(tmp_path):
    # setup
    state = AppState()
    state.open(_handle(tmp_path, shapes_recorded=False))
    state.choose_inputs(InputChoice(shapes={"input_ids": "1xq"}))

    # execute, assert
    with pytest.raises(InputError, match="bad dims '1xq'"):
        state.bench_request()


def test_requests_need_an_open_model():
    with pytest.raises(InputError, match="open a model first"):
        AppState().optimize_request(Recipe())


def test_the_optimize_request_uses_the_run_threads_and_the_comparison_time(tmp_path):
    # setup
    state = AppState()
    state.open(_handle(tmp_path))
    state.update_run_settings(compare_seconds=0.25)

    # execute
    request = state.optimize_request(Recipe())

    # assert
    assert request.threads == 1 and request.compare_seconds == 0.25 and request.output.endswith(".onnx")


def test_run_settings_survive_a_restart_as_text():
    # setup
    saved = {key: str(value) for key, value in RunSettings(threads=3, duration_s=0.5, graph_level="basic")
             .saved().items()}
    state = AppState()

    # execute
    state.restore_run_settings({**saved, "graph_level": "no such level", "iterations": None})

    # assert
    assert state.run_settings == RunSettings(threads=3, duration_s=0.5)


def test_changing_a_setting_to_its_value_is_no_change():
    # setup
    state, changes = AppState(), []
    state.run_settings_changed.connect(changes.append)

    # execute
    state.update_run_settings(batch=1)

    # assert
    assert changes == []


def test_a_cancel_event_is_a_plain_threading_event():
    # setup
    job = JobBoard().start("export")

    # execute
    threading.Thread(target=job.cancel.set).start()

    # assert
    assert job.cancel.wait(5)
