"""Side-by-side latency of several models in this process, with the studio's benchmark runner.

Used by auto quantization to rank its candidates and by `optimize` for the
before/after figure. Models are measured in interleaved rounds (A B C, then
B C A, ...) so drift of a shared machine hits them alike, and compared by the
median of all their samples.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from core.progress import Progress
from engine.backends import BackendOptions, get_backend
from engine.device.discovery import DeviceRunner
from engine.errors import OptimizationCancelled
from engine.measure.runner import BenchmarkSettings, run_benchmark
from engine.model.handle import ModelHandle
from engine.model.inputs import PreparedInputs

MIN_ITERATIONS_PER_ROUND = 5
WARMUP_ITERATIONS = 5


@dataclass(frozen=True)
class LatencyMeasurement:
    name: str
    median_ms: float
    p90_ms: float
    mean_ms: float
    samples: int
    backend: str

    def to_dict(self) -> dict:
        return {"name": self.name, "median_ms": self.median_ms, "p90_ms": self.p90_ms, "mean_ms": self.mean_ms,
                "samples": self.samples, "backend": self.backend}


def measure_side_by_side(
    models: Mapping[str, ModelHandle],
    inputs: PreparedInputs,
    runner: DeviceRunner,
    *,
    seconds_each: float,
    rounds: int = 3,
    threads: int | None = None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> dict[str, LatencyMeasurement]:
    """Median latency of each model on the same feed; `runner` is used for ONNX models, torch on its CPU otherwise."""
    cancel = cancel or threading.Event()
    names = list(models)
    samples: dict[str, list[np.ndarray]] = {name: [] for name in names}
    backends: dict[str, str] = {}
    settings = BenchmarkSettings(warmup=WARMUP_ITERATIONS, min_iterations=MIN_ITERATIONS_PER_ROUND,
                                 min_duration_s=seconds_each / rounds)
    total = rounds * len(names)
    done = 0
    for round_index in range(rounds):
        shift = round_index % max(len(names), 1)
        for name in names[shift:] + names[:shift]:
            if cancel.is_set():
                raise OptimizationCancelled("optimization cancelled; nothing was written")
            handle = models[name]
            backend_name = handle.format.default_backend
            model_runner = runner if runner.backend == backend_name else DeviceRunner(backend_name, "cpu")
            result = run_benchmark(get_backend(backend_name), handle, model_runner, BackendOptions(threads=threads),
                                   inputs, settings, cancel=cancel)
            if result.status == "cancelled":
                raise OptimizationCancelled("optimization cancelled; nothing was written")
            samples[name].append(result.latencies_ns)
            backends[name] = backend_name
            done += 1
            if progress:
                progress(done / total, f"timing {name} (round {round_index + 1}/{rounds})")
    measurements = {}
    for name in names:
        pooled = np.concatenate(samples[name]).astype(np.float64) / 1e6
        measurements[name] = LatencyMeasurement(name, float(np.median(pooled)), float(np.percentile(pooled, 90)),
                                                float(pooled.mean()), int(pooled.size), backends[name])
    return measurements
