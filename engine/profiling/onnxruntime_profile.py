"""An ONNX Runtime session with profiling on, set up exactly as the benchmark backend sets up its sessions.

The backend builds its SessionOptions inside `create_session` and has no hook for profiling, so the same
settings are applied here; `tests/engine/profiling/test_layer_profile.py` checks the two sessions report the same
providers and thread settings.
"""

from __future__ import annotations

import bisect
import functools
import json
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from time import perf_counter_ns

import numpy as np

from core.progress import Progress
from engine.backends.base import BackendOptions
from engine.backends.onnxruntime_backend import _ort_errors
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError, InputError, first_line
from engine.measure.samples import SampleBuffer
from engine.measure.timed_loop import time_iterations, warm_up
from engine.model.handle import ModelFormat, ModelHandle
from engine.model.inputs import PreparedInputs
from engine.model.macs import count_macs
from engine.profiling.layer_profile import (
    FUSED_MACS_NOTE,
    LayerProfile,
    NodeEvent,
    build_profile,
)

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


def parse_ort_trace(trace: Sequence[dict], *, skip_runs: int = 0) -> tuple[list[NodeEvent], list[float]]:
    """Node events and per-run durations (µs) from an ONNX Runtime profile, dropping the first `skip_runs` runs.

    The trace is a JSON array of Chrome-trace events: `cat` "Session" events named "model_run" span each
    inference; `cat` "Node" events named "<node>_kernel_time" carry `dur` (µs) and args `op_name`, `provider`
    and the input/output shapes. Nodes are assigned to the run whose span contains them.
    """
    runs = sorted((event["ts"], event["ts"] + event["dur"]) for event in trace
                  if event.get("cat") == "Session" and event.get("name") == "model_run")
    starts = [start for start, _ in runs]
    events = []
    for event in sorted(trace, key=lambda item: item.get("ts", 0)):
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        run = bisect.bisect_right(starts, event["ts"]) - 1
        if run < skip_runs or run >= len(runs) or event["ts"] > runs[run][1]:
            continue
        args = event.get("args", {})
        events.append(NodeEvent(name[: -len("_kernel_time")], args.get("op_name", "?"), args.get("provider", "?"),
                                float(event["dur"]), run - skip_runs, _shapes(args.get("input_type_shape", [])),
                                _shapes(args.get("output_type_shape", []))))
    return events, [float(end - start) for start, end in runs[skip_runs:]]


def _shapes(entries: Sequence[dict]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(d) for d in next(iter(entry.values()), [])) for entry in entries if isinstance(entry, dict))


def profile_onnxruntime(handle: ModelHandle, runner: DeviceRunner, options: BackendOptions, inputs: PreparedInputs,
                        *, iterations: int = 20, warmup: int = 5, cancel: threading.Event | None = None,
                        progress: Progress | None = None) -> LayerProfile:
    """A profiled session (same provider and options as the timed run), `iterations` inferences after warm-up."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    if iterations < 1 or warmup < 0:
        raise InputError("profiling needs at least 1 iteration and 0 or more warm-up runs")
    with tempfile.TemporaryDirectory(prefix="autoglm-ort-profile-") as folder:
        report(0.0, "creating a profiled session")
        session = profiling_session(handle, runner, options, Path(folder) / "profile")
        feed = dict(inputs.feed)
        run = functools.partial(session.run, None, feed)
        walls = SampleBuffer(iterations)

        def profiled(count: int, _elapsed_ns: int) -> None:
            report((warmup + count) / (warmup + iterations), f"profiled inference {warmup + count}")

        try:
            report(0.0, f"warm-up: {warmup} inferences")
            warm_up(run, None, warmup, cancel, clock=perf_counter_ns)
            span = time_iterations(run, None, walls, cancel, clock=perf_counter_ns, iterations=iterations,
                                   progress=profiled)
        except ort_run_errors() as error:
            read_trace(session, Path(folder))  # ends profiling so no trace file outlives the folder
            raise BackendError(f"onnxruntime failed during the profiled run: {first_line(error)}") from error
        trace = read_trace(session, Path(folder))
    events, run_us = parse_ort_trace(trace, skip_runs=warmup)
    if not span.iterations or not run_us:
        raise BackendError("the profiled run was stopped before any inference was profiled")
    shapes = {name: array.shape for name, array in inputs.feed.items()}
    counted = {layer.name: layer.macs for layer in count_macs(handle.path, shapes).layers}
    profile = build_profile(events, runtime="onnxruntime", model=handle.name, requested=runner.provider,
                            batch_size=inputs.batch_size, iterations=len(run_us), run_walls_ns=walls.snapshot()[1],
                            runtime_run_us=float(np.mean(run_us)), macs_by_name=counted)
    if any(node.macs is not None and node.name not in counted for node in profile.nodes):
        profile = replace(profile, notes=(*profile.notes, FUSED_MACS_NOTE))
    return profile
