"""How much does the studio's runner add to a bare ONNX Runtime loop?

One ONNX Runtime session on the sample transformer (1 intra-op thread) is timed
two ways in this process, interleaved over several rounds so machine drift hits
both alike: a bare `session.run` loop with perf_counter_ns, and the studio's
runner. Prints the ratio of the runner's median latency to the bare loop's.
Target: ≤ 1.02. Also prints the time each loop spends between iterations, outside
the clock (appending the sample, the stop and cancel checks): it does not change a
latency, but it stretches the wall time that throughput divides by.

    .venv/bin/python benchmarks/runner_overhead.py [--rounds 5] [--iterations 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort
from studio.resources import sample_model_path

from engine.backends import BackendOptions
from engine.backends.onnxruntime_backend import OrtSession
from engine.device.discovery import DeviceRunner
from engine.measure.runner import BenchmarkSettings, run_benchmark
from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.opening import load_model

TARGET = 1.02
RUNNER = DeviceRunner("onnxruntime", "CPUExecutionProvider")
OPTIONS = BackendOptions(threads=1)


class SharedSession:
    """A backend that hands the runner the very session the bare loop uses."""

    name = "onnxruntime"

    def __init__(self, session: OrtSession):
        self.session = session

    def import_runtime(self):
        pass

    def load(self, handle):
        return None

    def create_session(self, loaded, runner, options):
        return self.session


class _KeepOpen(OrtSession):
    def close(self) -> None:  # the session is reused across rounds
        pass


def bare_loop(session: ort.InferenceSession, feed: dict, warmup: int, iterations: int) -> tuple[np.ndarray, int]:
    """Latencies and the loop's wall time in ns."""
    for _ in range(warmup):
        session.run(None, feed)
    latencies = np.empty(iterations, dtype=np.int64)
    loop_start = time.perf_counter_ns()
    for i in range(iterations):
        start = time.perf_counter_ns()
        session.run(None, feed)
        latencies[i] = time.perf_counter_ns() - start
    return latencies, time.perf_counter_ns() - loop_start


def between_iterations_ns(latencies: np.ndarray, wall_ns: int) -> float:
    return (wall_ns - float(latencies.sum())) / latencies.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=30)
    args = parser.parse_args()

    handle = load_model(sample_model_path("transformer"))
    inputs = prepare_inputs(handle.inputs, InputRequest(), index_bounds=handle.index_bounds)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    raw = ort.InferenceSession(str(handle.path), sess_options=options, providers=["CPUExecutionProvider"])
    backend = SharedSession(_KeepOpen(raw, RUNNER, OPTIONS))
    settings = BenchmarkSettings(warmup=args.warmup, min_iterations=args.iterations, min_duration_s=0)

    print(f"sample transformer {inputs.to_dict()['shapes']}, 1 thread, {args.rounds} rounds × {args.iterations} iterations each way")
    print(f"{'round':>5}  {'bare p50 ms':>11}  {'runner p50 ms':>13}  {'ratio':>6}")
    bare_all, runner_all = [], []
    gaps: dict[str, list[float]] = {"bare": [], "runner": []}
    for round_index in range(args.rounds):
        order = ("bare", "runner") if round_index % 2 == 0 else ("runner", "bare")
        medians = {}
        for way in order:
            if way == "bare":
                latencies, wall_ns = bare_loop(raw, inputs.feed, args.warmup, args.iterations)
                bare_all.append(latencies)
            else:
                result = run_benchmark(backend, handle, RUNNER, OPTIONS, inputs, settings)
                latencies, wall_ns = result.latencies_ns, result.loop_end_ns - result.loop_start_ns
                runner_all.append(latencies)
            gaps[way].append(between_iterations_ns(latencies, wall_ns))
            medians[way] = float(np.median(latencies)) / 1e6
        print(f"{round_index + 1:>5}  {medians['bare']:>11.4f}  {medians['runner']:>13.4f}  {medians['runner'] / medians['bare']:>6.4f}")

    bare_median = float(np.median(np.concatenate(bare_all))) / 1e6
    runner_median = float(np.median(np.concatenate(runner_all))) / 1e6
    ratio = runner_median / bare_median
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"pooled median: bare {bare_median:.4f} ms, runner {runner_median:.4f} ms")
    print(f"runner/bare median latency ratio: {ratio:.4f} ({verdict} the ≤ {TARGET} target)")
    print(f"between iterations, outside the clock (median of rounds): bare {np.median(gaps['bare']):.0f} ns, "
          f"runner {np.median(gaps['runner']):.0f} ns")


if __name__ == "__main__":
    main()
