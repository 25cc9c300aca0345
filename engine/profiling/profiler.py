"""Per-layer profiles with the runtime the benchmark used: each runtime's profiler gives the same tables."""

from __future__ import annotations

import threading

from core.progress import Progress
from engine.backends.base import BackendOptions
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError
from engine.model.handle import ModelHandle
from engine.model.inputs import PreparedInputs
from engine.profiling.layer_profile import LayerProfile
from engine.profiling.onnxruntime_profile import profile_onnxruntime
from engine.profiling.torch_profile import profile_torch


def profile_layers(backend: str, handle: ModelHandle, runner: DeviceRunner, options: BackendOptions,
                   inputs: PreparedInputs, *, iterations: int = 20, warmup: int = 5,
                   cancel: threading.Event | None = None, progress: Progress | None = None) -> LayerProfile:
    """The per-layer profile with the runtime the benchmark uses ("onnxruntime" or "torch")."""
    if backend == "onnxruntime":
        return profile_onnxruntime(handle, runner, options, inputs, iterations=iterations, warmup=warmup,
                                   cancel=cancel, progress=progress)
    if backend == "torch":
        return profile_torch(handle, runner, options, inputs, iterations=iterations, warmup=warmup, cancel=cancel,
                             progress=progress)
    raise BackendError(f"no per-layer profiler for the '{backend}' backend; use onnxruntime or torch")
