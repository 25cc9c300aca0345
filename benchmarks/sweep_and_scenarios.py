"""Find the sweet spot: a resumable batch × threads sweep, the cost of per-layer profiling, and the server max rate.

1. Sweep the sample CNN over batch 1,2,4,8 × threads 1,2 (adaptive: each point stops once the 95% CI of its
   median is within ±2%, capped in time). The sweep and its points are saved in a throw-away SQLite database;
   the first session is interrupted after three points and resumed, so only the rest are measured. Energy per
   point comes from the telemetry sampler where the machine has a counter (RAPL, NVML), else the reason.
   Prints the grid and the chosen point.
2. Profile overhead: the sample CNN's median latency in a profiled session against an unprofiled one
   (information only; interleaved rounds).
3. The server scenario's maximum Poisson arrival rate keeping p99 within 20 ms on the sample transformer.

    .venv/bin/python benchmarks/sweep_and_scenarios.py [--latency-limit-ms 20] [--point-cap-s 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import onnxruntime
from studio.resources import sample_model_path

from engine.backends import BackendOptions, get_backend
from engine.device.cpu_info import cpu_info
from engine.device.discovery import DeviceRunner
from engine.measure.adaptive_stopping import StoppingRule, measure_until_stable
from engine.measure.max_rate import find_max_rate
from engine.measure.prepared_session import prepared_session
from engine.measure.samples import SampleBuffer
from engine.measure.scenarios import ScenarioSettings
from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.opening import load_model
from engine.profiling.profiler import profile_layers
from engine.profiling.report import profile_text
from engine.sweep.analysis import analyze_sweep, grid_text
from engine.sweep.grid import PointSummary, SweepGrid, SweepSpec, run_sweep
from engine.sweep.points import measure_point, point_target, timed_window
from profilers.run_summary import summarize_snapshot
from storage import ModelInfo, RunStart, SweepStart, open_database
from studio.usecases import open_sampler
from studio.usecases.recording import energy_figures

CPU = DeviceRunner("onnxruntime", "CPUExecutionProvider")


def sweep_with_resume(args: argparse.Namespace) -> None:
    handle = load_model(sample_model_path("cnn"))
    spec = SweepSpec(SweepGrid(batches=(1, 2, 4, 8), threads=(1, 2)), seed=args.seed,
                     stopping=StoppingRule(warmup=10, min_iterations=50, min_duration_s=min(1.0, args.point_cap_s),
                                           max_duration_s=args.point_cap_s),
                     latency_limit_ms=args.latency_limit_ms, percentile="p99")
    print(f"== sweep: sample CNN, batch 1,2,4,8 x threads 1,2, seed {spec.seed}, stop at median 95% CI within "
          f"±2% (cap {args.point_cap_s:g} s), latency limit p99 <= {args.latency_limit_ms:g} ms")
    print("order:", ", ".join(f"b{p.batch}/t{p.threads}" for p in spec.order()))
    with tempfile.TemporaryDirectory(prefix="autoglm-sweep-bench-") as folder, \
            open_database(str(Path(folder) / "studio.db")) as db, open_sampler(args.telemetry_hz) as sampler:
        model_id = db.catalog.register_model(ModelInfo(str(handle.path), handle.sha256, "onnx", handle.size_bytes))
        sweep = db.sweeps.create_sweep(SweepStart(spec.to_dict(), spec.seed, model_id))

        def measure(point, cancel, progress) -> PointSummary:
            target = point_target(point, {None: handle})
            samples = SampleBuffer()
            writer = db.runs.start_run(RunStart(device=target.device.id, backend="onnxruntime", model_id=model_id,
                                                provider=target.runner.provider, settings=point.to_dict(),
                                                sweep_id=sweep.id, sweep_point=point.key))
            try:
                measurement = measure_point(target, spec.stopping, cancel=cancel, progress=progress, samples=samples)
            except Exception as error:  # the run is recorded as failed, then the error goes on to run_sweep
                writer.finish("failed", error=str(error))
                raise
            starts, latencies = samples.snapshot()
            writer.append_latency(starts, latencies, batches=point.batch)
            summary = with_energy(measurement, sampler)
            writer.finish(summary.status, summary=summary.to_dict())
            return summary

        interrupt = threading.Event()
        first = run_sweep(spec, measure, cancel=interrupt,
                          on_point=lambda summary: interrupt.set() if len(db.sweeps.completed_points(sweep.id)) >= 3
                          else None)
        db.sweeps.finish_sweep(sweep.id, "cancelled")
        print(f"first session: interrupted after {len(first.measured)} points")
        db.sweeps.resume_sweep(sweep.id)
        done = db.sweeps.completed_points(sweep.id)
        second = run_sweep(spec, measure, completed_keys=done)
        print(f"resumed: {len(second.skipped)} points already done were skipped, {len(second.measured)} measured")
        stored = [PointSummary.from_dict(run.summary) for run in db.sweeps.sweep_runs(sweep.id)
                  if run.status == "completed"]
        analysis = analyze_sweep(stored, latency_limit_ms=spec.latency_limit_ms, percentile=spec.percentile)
        db.sweeps.finish_sweep(sweep.id, "completed", summary=analysis.to_dict())
        print(f"stored: {db.sweeps.get_sweep(sweep.id).run_count} point runs linked to sweep {sweep.id}\n")

    marks = {s.key: "+" for s in analysis.frontier}
    if analysis.fastest.summary:
        marks[analysis.fastest.summary.key] = "*"
    print(grid_text(analysis.tables[0], percentile=spec.percentile, marks=marks))
    print("  (+ on the throughput/latency frontier, * chosen)")
    print(f"{'point':<28}{'items/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'median 95% CI ms':>20}{'samples':>9}  stop")
    for s in sorted(stored, key=lambda s: (s.point.batch, s.point.threads)):
        low, high = s.median_ci_ms or (float("nan"), float("nan"))
        print(f"{s.point.label():<28}{s.throughput_per_s:>10.1f}{s.percentiles_ms['p50']:>9.3f}"
              f"{s.percentiles_ms['p99']:>9.3f}{f'{low:.3f}-{high:.3f}':>20}{s.samples:>9}  {s.stop_reason}")
    print(f"frontier (by p99): {', '.join(s.point.label() for s in analysis.frontier)}")
    chosen = analysis.fastest
    print(f"CHOSEN under p99 <= {spec.latency_limit_ms:g} ms: "
          f"{chosen.summary.point.label() if chosen.summary else 'none'} - {chosen.reason}")
    efficient = analysis.most_efficient
    print(f"most energy-efficient: {efficient.summary.point.label() if efficient.summary else 'none'} - "
          f"{efficient.reason}\n")


def with_energy(measurement, sampler) -> PointSummary:
    """Energy over the point's timed loop from the sampler's counters, or why it is unavailable."""
    start, end, starts = timed_window(measurement)
    summary = measurement.summary
    if summary.samples == 0:
        return summary.with_energy(None, unavailable="nothing was timed")
    telemetry = summarize_snapshot(sampler.snapshot(), start, end, inferences=summary.samples, items=summary.items,
                                   latency_timestamps_ns=starts).to_dict()
    figures = energy_figures(telemetry)
    measured = [f for f in figures if f.total_joules is not None]
    if measured:
        return summary.with_energy(sum(f.total_joules for f in measured),
                                   "; ".join(f"{f.device}: {f.source}" for f in measured))
    reasons = "; ".join(f"{f.device}: {f.unavailable_reason}" for f in figures if f.unavailable_reason)
    return summary.with_energy(None, unavailable=reasons or "no energy counter on this machine")


def profile_overhead(rounds: int, iterations: int) -> None:
    handle = load_model(sample_model_path("cnn"))
    inputs = prepare_inputs(handle.inputs, InputRequest(batch=1))
    options = BackendOptions(threads=1)
    rule = StoppingRule(warmup=20, min_iterations=iterations, min_duration_s=0.0, ci_half_width=None,
                        max_duration_s=60.0)
    print(f"== per-layer profile overhead: sample CNN, batch 1, 1 thread, {rounds} interleaved rounds x "
          f"{iterations} inferences (information only)")
    plain, profiled, profile = [], [], None
    for round_index in range(rounds):
        for way in (("plain", "profiled") if round_index % 2 == 0 else ("profiled", "plain")):
            if way == "plain":
                with prepared_session(get_backend("onnxruntime"), handle, CPU, options, inputs.feed) as ready:
                    plain.append(float(np.median(measure_until_stable(ready, rule).latencies_ns)) / 1e6)
            else:
                profile = profile_layers("onnxruntime", handle, CPU, options, inputs, iterations=iterations, warmup=20)
                profiled.append(profile.profiled_run_ms["median"])
        print(f"round {round_index + 1}: unprofiled median {plain[-1]:.4f} ms, profiled median {profiled[-1]:.4f} ms")
    ratio = np.median(profiled) / np.median(plain)
    print(f"median over rounds: unprofiled {np.median(plain):.4f} ms, profiled {np.median(profiled):.4f} ms, "
          f"profiled/unprofiled {ratio:.3f}\n")
    print(profile_text(profile, top=8), "\n")


def server_max_rate(bound_ms: float, threads: int, min_duration_s: float) -> None:
    handle = load_model(sample_model_path("transformer"))
    inputs = prepare_inputs(handle.inputs, InputRequest(), index_bounds=handle.index_bounds)
    settings = ScenarioSettings("server", min_duration_s=min_duration_s, min_queries=200, warmup=20,
                                target_qps=1.0, latency_bound_ms=bound_ms, seed=0)
    print(f"== server scenario max rate: sample transformer {inputs.to_dict()['shapes']}, {threads} thread(s), "
          f"p99 <= {bound_ms:g} ms, Poisson arrivals (seed 0), >= {min_duration_s:g} s and >= 200 queries per trial")
    with prepared_session(get_backend("onnxruntime"), handle, CPU, BackendOptions(threads=threads),
                          inputs.feed) as ready:
        search = find_max_rate(ready, inputs.batch_size, settings, relative_tolerance=0.05, max_trials=10)
    print(f"capacity (1 / median service time): {search.capacity_qps:.1f} queries/s")
    print(f"{'rate q/s':>10}{'p99 ms':>10}{'queries':>9}{'held':>6}  why not")
    for trial in search.trials:
        why = "" if trial.held else trial.validity_reasons[-1] if trial.validity_reasons else ""
        print(f"{trial.rate_qps:>10.1f}{trial.p99_ms:>10.3f}{trial.result.queries:>9}{'yes' if trial.held else 'no':>6}"
              f"  {why}")
    best = f"{search.max_rate_qps:.1f} queries/s" if search.max_rate_qps is not None else "none"
    print(f"MAX RATE with p99 <= {bound_ms:g} ms: {best} ({search.note})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-limit-ms", type=float, default=20.0)
    parser.add_argument("--point-cap-s", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--telemetry-hz", type=float, default=10.0)
    parser.add_argument("--profile-rounds", type=int, default=3)
    parser.add_argument("--profile-iterations", type=int, default=300)
    parser.add_argument("--bound-ms", type=float, default=20.0)
    parser.add_argument("--server-threads", type=int, default=1)
    parser.add_argument("--trial-duration-s", type=float, default=2.0)
    args = parser.parse_args()
    print(f"machine: {cpu_info().model}, {os.cpu_count()} logical cores; onnxruntime {onnxruntime.__version__}\n")
    sweep_with_resume(args)
    profile_overhead(args.profile_rounds, args.profile_iterations)
    server_max_rate(args.bound_ms, args.server_threads, args.trial_duration_s)


if __name__ == "__main__":
    main()
