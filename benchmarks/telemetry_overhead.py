"""What does live telemetry cost a benchmark?

1. Throughput of the sample transformer (1 thread) through the studio's bench use
   case with the sampler at 10 Hz and with it off, interleaved over several rounds
   in one process. Target: ratio ≥ 0.98.
2. The sampler's own CPU time per second of wall time at 10 Hz: the CPU time of
   its thread (psutil's per-thread accounting), beside the whole process's while
   the main thread sleeps. Target: ≤ 1% of one core.

    .venv/bin/python benchmarks/telemetry_overhead.py [--rounds 4] [--duration 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import psutil

from engine.backends import BackendOptions
from engine.measure.runner import BenchmarkSettings
from studio import usecases
from studio.usecases.benchmark import benchmark_timed_loop

THROUGHPUT_TARGET = 0.98
CPU_TARGET = 0.01


def throughput(hz: float | None, duration_s: float) -> float:
    request = usecases.BenchRequest(
        model=usecases.sample_models()["transformer"],
        options=BackendOptions(threads=1),
        settings=BenchmarkSettings(warmup=30, min_iterations=300, min_duration_s=duration_s),
        telemetry_hz=hz,
    )
    return benchmark_timed_loop(request).result.stats.throughput_per_s


def sampler_cpu_share(hz: float, seconds: float) -> tuple[float, float]:
    """(the sampler thread's CPU share of one core, the whole process's) over `seconds` of sampling."""
    process = psutil.Process()
    sampler = usecases.open_sampler(hz)
    threads_before = {thread.id for thread in process.threads()}
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    sampler.start()
    time.sleep(seconds)
    sampler_threads = [t for t in process.threads() if t.id not in threads_before]  # read before it stops
    wall = time.perf_counter() - wall_before
    process_cpu = time.process_time() - cpu_before
    sampler.close()
    thread_cpu = sum(t.user_time + t.system_time for t in sampler_threads)
    return thread_cpu / wall, process_cpu / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=2.0, help="minimum seconds per timed loop")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="how long to watch the sampler alone")
    args = parser.parse_args()

    print(f"sample transformer, 1 thread, {args.rounds} rounds × {args.duration:g} s each way")
    print(f"{'round':>5}  {'off items/s':>11}  {'10 Hz items/s':>13}  {'ratio':>6}")
    off, on = [], []
    for round_index in range(args.rounds):
        order = (None, 10.0) if round_index % 2 == 0 else (10.0, None)
        measured = {hz: throughput(hz, args.duration) for hz in order}
        off.append(measured[None])
        on.append(measured[10.0])
        print(f"{round_index + 1:>5}  {measured[None]:>11.1f}  {measured[10.0]:>13.1f}  {measured[10.0] / measured[None]:>6.4f}")
    ratio = float(np.mean(on) / np.mean(off))
    print(f"throughput ratio, sampler at 10 Hz / off: {ratio:.4f} ({'meets' if ratio >= THROUGHPUT_TARGET else 'MISSES'} "
          f"the ≥ {THROUGHPUT_TARGET} target)")

    share, process_share = sampler_cpu_share(10.0, args.idle_seconds)
    print(f"sampler thread CPU time at 10 Hz: {share * 1e3:.2f} ms per second of wall time = {share:.2%} of one core "
          f"({'meets' if share <= CPU_TARGET else 'MISSES'} the ≤ {CPU_TARGET:.0%} target); the whole process meanwhile: "
          f"{process_share:.2%}")


if __name__ == "__main__":
    main()
