"""Per-layer profile of a PyTorch model with torch.profiler, in the same tables as ONNX Runtime's.

Each leaf module (a layer: Conv2d, Linear, LayerNorm, ...) is wrapped in a `record_function` range by forward
hooks, so torch.profiler reports time per layer rather than per aten op; the module's class is its op type.
Work done in `forward` outside any leaf module (functional calls, reshapes) is reported as unattributed.
Scripted, traced and exported modules run their graph without calling Python hooks; they are timed per
operator (aten op, by self time) instead, and the profile says so.
On CUDA the layer's device time is used (the kernels it launched); on the CPU its CPU time. MACs of Conv and
Linear layers come from the shapes seen by the hooks, by the same rules as engine.model.macs.
"""

from __future__ import annotations

import functools
import math
import threading
from time import perf_counter_ns

import numpy as np

from core.progress import Progress
from engine.backends.base import BackendOptions
from engine.device.discovery import DeviceRunner
from engine.errors import BackendError, InputError, first_line
from engine.measure.samples import SampleBuffer
from engine.measure.timed_loop import time_iterations, warm_up
from engine.model.handle import ModelHandle
from engine.model.inputs import PreparedInputs
from engine.profiling.layer_profile import LayerProfile, NodeEvent, build_profile

LAYER_PREFIX = "layer::"
FORWARD_RANGE = "model::forward"


def profile_torch(handle: ModelHandle, runner: DeviceRunner, options: BackendOptions, inputs: PreparedInputs, *,
                  iterations: int = 20, warmup: int = 5, cancel: threading.Event | None = None,
                  progress: Progress | None = None) -> LayerProfile:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from engine.backends import get_backend

    if iterations < 1 or warmup < 0:
        raise InputError("profiling needs at least 1 iteration and 0 or more warm-up runs")
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    backend = get_backend("torch")
    module, input_names = backend.load(handle)
    session = backend.create_session((module, input_names), runner, options)  # moves the module, sets threads
    device = torch.device(runner.provider)
    try:
        model = module  # nn.Module.to moves in place: this is the module as the session placed it
        tensors = [torch.from_numpy(np.ascontiguousarray(inputs.feed[name])).to(device) for name in input_names]
        scripted = isinstance(model, torch.jit.ScriptModule)  # refuses Python hooks
        layers = [] if scripted else [(name, layer) for name, layer in model.named_modules()
                                      if not any(True for _ in layer.children())]
        shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        hooks = _attach_ranges(layers, shapes, record_function)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        walls = SampleBuffer(iterations)

        def forward() -> None:
            with record_function(FORWARD_RANGE):
                model(*tensors)

        try:
            with torch.inference_mode():
                warm_up(functools.partial(model, *tensors), None, warmup, cancel, clock=perf_counter_ns)
                session.synchronize()
                report(0.2, f"profiling {iterations} inferences")
                with profile(activities=activities) as profiler:
                    span = time_iterations(forward, session.synchronize, walls, cancel, clock=perf_counter_ns,
                                           iterations=iterations)
        except session.run_errors as error:
            raise BackendError(f"the model failed during the profiled run: {first_line(error)}") from error
        finally:
            for hook in hooks:
                hook.remove()
    finally:
        session.close()
    if not span.iterations:
        raise BackendError("the profiled run was stopped before any inference was profiled")
    _, latencies = walls.snapshot()
    return _profile_from(profiler, layers, shapes, runner, inputs, latencies, handle.name, device.type == "cuda")


def _attach_ranges(layers, shapes: dict, record_function) -> list:
    """Forward hooks that open a named profiler range before each leaf layer and close it after."""
    open_ranges: dict[str, object] = {}

    def before(name: str, _module, args) -> None:
        scope = record_function(LAYER_PREFIX + name)
        scope.__enter__()
        open_ranges[name] = scope

    def after(name: str, _module, args, output) -> None:
        open_ranges.pop(name).__exit__(None, None, None)
        if name not in shapes:
            shapes[name] = (_shape_of(args[0]) if args else (), _shape_of(output))

    hooks = []
    for name, layer in layers:
        hooks.append(layer.register_forward_pre_hook(functools.partial(before, name)))
        hooks.append(layer.register_forward_hook(functools.partial(after, name)))
    return hooks


def _profile_from(profiler, layers, shapes, runner: DeviceRunner, inputs: PreparedInputs, walls: np.ndarray,
                  model_name: str, on_device: bool) -> LayerProfile:
    modules = dict(layers)
    events, operators, forward_us = [], [], []
    for event in profiler.events():
        if event.name == FORWARD_RANGE:
            forward_us.append(_duration_us(event, on_device))
        elif event.name.startswith(LAYER_PREFIX):
            name = event.name[len(LAYER_PREFIX):]
            layer = modules.get(name)
            input_shape, output_shape = shapes.get(name, ((), ()))
            events.append(NodeEvent(name, type(layer).__name__ if layer is not None else "?", str(runner.provider),
                                    _duration_us(event, on_device), 0, (input_shape,), (output_shape,),
                                    _layer_macs(layer, output_shape)))
        else:  # an operator; its self time, so nested operators are not counted twice
            self_time = event.self_device_time_total if on_device else event.self_cpu_time_total
            operators.append(NodeEvent(event.name, event.name, str(runner.provider), float(self_time), 0))
    notes = ["PyTorch runs every layer on the device its module is on: no per-layer fallback"]
    if not events:  # scripted, traced and exported modules run their graph without calling Python hooks
        events = operators
        notes.append("this module does not call per-layer hooks (TorchScript or torch.export): timed per operator")
    return build_profile(events, runtime="torch", model=model_name, requested=str(runner.provider),
                         batch_size=inputs.batch_size, iterations=len(walls), run_walls_ns=walls,
                         runtime_run_us=sum(forward_us) / len(forward_us) if forward_us else None, notes=notes)


def _duration_us(event, on_device: bool) -> float:
    if on_device and getattr(event, "device_time_total", 0):
        return float(event.device_time_total)
    return float(event.cpu_time_total)


def _shape_of(value) -> tuple[int, ...]:
    shape = getattr(value, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else ()


def _layer_macs(layer, output_shape: tuple[int, ...]) -> int | None:
    """Conv: output elements × (in channels / groups) × kernel; Linear: output elements × in features."""
    if layer is None or not output_shape:
        return None
    kind = type(layer).__name__
    if kind in ("Conv1d", "Conv2d", "Conv3d"):
        return math.prod(output_shape) * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    if kind == "Linear":
        return math.prod(output_shape) * layer.in_features
    return None
