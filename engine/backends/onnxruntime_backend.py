"""ONNX Runtime: any execution provider, with IOBinding on GPUs so the clock waits for the device."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.backends.base import BackendOptions
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError, first_line
from engine.runtime_logs import ort_severity
from engine.model.handle import ModelFormat, ModelHandle

_DEVICE_MEMORY_PROVIDERS = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}


@dataclass(frozen=True)
class LoadedOnnx:
    path: Path
    content: bytes | None  # None when external data makes ONNX Runtime read from the path


def _ort_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (state.Fail, state.InvalidArgument, state.InvalidGraph, state.InvalidProtobuf, state.NoSuchFile,
            state.NotImplemented, state.RuntimeException, state.EPFail, RuntimeError)


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def import_runtime(self) -> None:
        import onnxruntime

        onnxruntime.set_default_logger_severity(ort_severity())  # also the sessions ORT's own tools create

    def load(self, handle: ModelHandle) -> LoadedOnnx:
        if handle.format is not ModelFormat.ONNX:
            raise BackendError(f"the onnxruntime backend runs ONNX models; {handle.name} is {handle.format.value}: use --backend torch")
        content = handle.path.read_bytes()
        if len(handle.files) == 1:
            return LoadedOnnx(handle.path, content)
        for external in handle.files[1:]:  # bring external weights into the page cache; the session reads them by path
            with external.open("rb") as stream:
                while stream.read(1 << 24):
                    pass
        return LoadedOnnx(handle.path, None)

    def create_session(self, loaded: LoadedOnnx, runner: DeviceRunner, options: BackendOptions) -> OrtSession:
        import onnxruntime as ort

        session_options = ort.SessionOptions()
        session_options.log_severity_level = ort_severity()
        if options.threads:
            session_options.intra_op_num_threads = options.threads
        if options.inter_op_threads:
            session_options.inter_op_num_threads = options.inter_op_threads
        session_options.execution_mode = {
            "sequential": ort.ExecutionMode.ORT_SEQUENTIAL,
            "parallel": ort.ExecutionMode.ORT_PARALLEL,
        }[options.execution_mode]
        session_options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[options.graph_optimization_level]
        providers = [(runner.provider, dict(runner.options))]
        if runner.provider != "CPUExecutionProvider":
            providers.append(("CPUExecutionProvider", {}))  # nodes the accelerator cannot run
        try:
            session = ort.InferenceSession(loaded.content or str(loaded.path), sess_options=session_options, providers=providers)
        except _ort_errors() as error:
            raise BackendError(f"onnxruntime could not create a session for {loaded.path.name}: {first_line(error)}") from error
        active = session.get_providers()
        if active[0] != runner.provider:
            raise BackendError(f"{runner.provider} did not start (onnxruntime fell back to {active[0]}); check the driver and runtime")
        _check_provider_options(runner, session.get_provider_options().get(runner.provider, {}))
        return OrtSession(session, runner, options)


# The CPU provider reports no options back (get_provider_options() gives {}), so its known keys are listed here.
CPU_PROVIDER_OPTIONS = frozenset({"arena_extend_strategy"})


def _check_provider_options(runner: DeviceRunner, effective: dict) -> None:
    """ONNX Runtime ignores option keys its provider does not know: a misspelt one would silently do nothing."""
    known = set(effective) or (CPU_PROVIDER_OPTIONS if runner.provider == "CPUExecutionProvider" else set(runner.options))
    unknown = sorted(set(runner.options) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise BackendError(f"{runner.provider} has no option {', '.join(unknown)} (it takes: {takes})")


class OrtSession:
    def __init__(self, session, runner: DeviceRunner, options: BackendOptions):
        self._session = session
        self._runner = runner
        self._binding = None
        self._output_names = [output.name for output in session.get_outputs()]
        self._device_memory = _DEVICE_MEMORY_PROVIDERS.get(runner.provider)
        self.needs_sync = self._device_memory is not None
        self.run_errors = _ort_errors()
        self.description = {
            "runtime": "onnxruntime",
            "providers": session.get_providers(),
            "provider_options": {runner.provider: dict(runner.options)},
            "intra_op_threads": options.threads,
            "inter_op_threads": options.inter_op_threads,
            "execution_mode": options.execution_mode,
            "graph_optimization_level": options.graph_optimization_level,
            "io_binding": self.needs_sync,
        }

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outputs = self._session.run(None, dict(feed))
        except self.run_errors as error:
            raise BackendError(f"onnxruntime failed to run the model: {first_line(error)}") from error
        return dict(zip(self._output_names, outputs))

    def bind(self, feed: Mapping[str, np.ndarray]):
        if self._device_memory is None:
            return functools.partial(self._session.run, None, dict(feed))
        import onnxruntime as ort

        device_id = int(self._runner.options.get("device_id", 0))
        binding = self._session.io_binding()
        for name, array in feed.items():  # inputs live on the device, so the loop times compute, not copies
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array, self._device_memory, device_id))
        for name in self._output_names:
            binding.bind_output(name, self._device_memory, device_id)
        self._binding = binding
        return functools.partial(self._session.run_with_iobinding, binding)

    def synchronize(self) -> None:
        if self._binding is not None:
            self._binding.synchronize_outputs()

    def close(self) -> None:
        self._binding = None
        self._session = None

