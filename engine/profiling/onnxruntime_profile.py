"""An ONNX Runtime session with profiling on, set up exactly as the benchmark backend sets up its sessions.

The backend builds its SessionOptions inside `create_session` and has no hook for profiling, so the same
settings are applied here; `tests/engine/profiling/test_layer_profile.py` checks the two sessions report the same
providers and thread settings.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.backends.base import BackendOptions
from engine.backends.onnxruntime_backend import _ort_errors
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError, first_line
from engine.model.handle import ModelFormat, ModelHandle

_EXECUTION_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}
_OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                        "all": "ORT_ENABLE_ALL"}


def ort_run_errors() -> tuple[type[BaseException], ...]:
    return _ort_errors()


def profiling_session(handle: ModelHandle, runner: DeviceRunner, options: BackendOptions, prefix: Path):
    """An InferenceSession writing its trace to `prefix`_<timestamp>.json; the caller owns the folder."""
    import onnxruntime as ort

    if handle.format is not ModelFormat.ONNX:
        raise BackendError(f"ONNX Runtime profiles ONNX models; {handle.name} is {handle.format.value}")
    session_options = ort.SessionOptions()
    session_options.log_severity_level = 3
    session_options.enable_profiling = True
    session_options.profile_file_prefix = str(prefix)
    if options.threads:
        session_options.intra_op_num_threads = options.threads
    if options.inter_op_threads:
        session_options.inter_op_num_threads = options.inter_op_threads
    session_options.execution_mode = getattr(ort.ExecutionMode, _EXECUTION_MODES[options.execution_mode])
    session_options.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                                       _OPTIMIZATION_LEVELS[options.graph_optimization_level])
    providers = [(runner.provider, dict(runner.options))]
    if runner.provider != "CPUExecutionProvider":
        providers.append(("CPUExecutionProvider", {}))  # as the backend does: nodes the accelerator cannot run
    try:
        session = ort.InferenceSession(str(handle.path), sess_options=session_options, providers=providers)
    except _ort_errors() as error:
        raise BackendError(f"onnxruntime could not create a profiled session for {handle.name}: "
                           f"{first_line(error)}") from error
    active = session.get_providers()
    if active[0] != runner.provider:
        session.end_profiling()
        raise BackendError(f"{runner.provider} did not start (onnxruntime fell back to {active[0]})")
    return session


def read_trace(session, folder: Path) -> list[dict]:
    """Ends profiling and reads the trace; a trace written outside `folder` is deleted after reading."""
    path = Path(session.end_profiling())
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        return json.loads(path.read_text())
    finally:
        if folder not in path.parents:
            path.unlink(missing_ok=True)
