"""`bench` and `monitor`: measure a model's cold start, latency and throughput, or watch every telemetry metric.

The bench option group (`add_bench_options`, read back by `bench_request`) is shared with the commands that
benchmark too (`profile`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.backends import BACKEND_NAMES, BackendOptions
from engine.backends.base import EXECUTION_MODES, GRAPH_OPTIMIZATION_LEVELS
from engine.errors import InputError
from engine.measure.runner import BenchmarkSettings
from engine.measure.scenarios import SCENARIOS, ScenarioSettings
from engine.model.inputs import parse_assignment
from profilers.sampler import DEFAULT_HZ, TelemetrySnapshot
from studio import usecases
from studio.cli.options import (
    add_input_options,
    add_trust_pickle_option,
    cancel_on_interrupt,
    db_url,
    EXIT_USAGE,
    finite,
    input_request,
    print_out,
    PROG,
    progress_bar,
)
from studio.present.benchmarks import outcome_text
from studio.present.telemetry import monitor_text


def add_bench_commands(commands, common: argparse.ArgumentParser) -> None:
    bench = commands.add_parser("bench", parents=[common], help="measure cold start, latency and throughput")
    bench.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    add_bench_options(bench)
    bench.set_defaults(handler=_bench)

    monitor = commands.add_parser("monitor", parents=[common], help="live view of every telemetry metric, and why others are unavailable")
    monitor.add_argument("--hz", type=finite, default=DEFAULT_HZ, help=f"sampling rate, 1-100 Hz (default {DEFAULT_HZ:g})")
    monitor.add_argument("--duration", type=finite, metavar="S", help="stop after S seconds (default: until Ctrl+C)")
    monitor.add_argument("--json", action="store_true", help="print one JSON object at the end instead of live text")
    monitor.set_defaults(handler=_monitor)


def add_bench_options(bench: argparse.ArgumentParser) -> None:
    """Everything a benchmark is configured by (runtime, device, inputs, stopping, telemetry, scenario, saving)."""
    bench.add_argument("--backend", choices=BACKEND_NAMES, help="runtime (default: onnxruntime for ONNX, torch otherwise)")
    bench.add_argument("--device", default="cpu", help="cpu, cuda:0 or npu (see `devices`); default cpu")
    bench.add_argument("--provider-option", action="append", default=[], metavar="KEY=VALUE",
                       help="ONNX Runtime provider option, e.g. cudnn_conv_algo_search=HEURISTIC (repeatable)")
    bench.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: the runtime's choice)")
    bench.add_argument("--inter-op-threads", type=int, metavar="N", help="inter-op threads (ONNX Runtime)")
    bench.add_argument("--execution-mode", choices=EXECUTION_MODES, default="sequential", help="ONNX Runtime execution mode")
    bench.add_argument("--graph-optimization", choices=GRAPH_OPTIMIZATION_LEVELS, default="all",
                       help="ONNX Runtime graph optimization level (default all)")
    bench.add_argument("--no-inference-mode", action="store_true", help="PyTorch: use no_grad() instead of inference_mode()")
    add_input_options(bench)
    bench.add_argument("--warmup", type=int, default=10, metavar="N", help="uncounted warm-up iterations (default 10)")
    bench.add_argument("--iterations", type=int, default=100, metavar="N", help="minimum timed iterations (default 100)")
    bench.add_argument("--duration", type=finite, default=1.0, metavar="S", help="minimum timed seconds (default 1)")
    add_trust_pickle_option(bench)
    bench.add_argument("--telemetry-hz", type=finite, default=DEFAULT_HZ, metavar="N",
                       help=f"telemetry sampling rate during the run, 1-100 Hz (default {DEFAULT_HZ:g}; 0 turns it off)")
    bench.add_argument("--idle-baseline", type=finite, default=0.0, metavar="S",
                       help="sample S seconds of idle power first and subtract it from the run's energy")
    bench.add_argument("--scenario", choices=SCENARIOS,
                       help="LoadGen-style scenario: single-stream (p90), offline (throughput), server (Poisson arrivals)")
    bench.add_argument("--rate", type=finite, metavar="QPS", help="server scenario: target queries per second")
    bench.add_argument("--latency-bound-ms", type=finite, metavar="X", help="server scenario: p99 latency bound")
    bench.add_argument("--find-max-rate", action="store_true",
                       help="server scenario: search the highest rate whose p99 stays within --latency-bound-ms")
    bench.add_argument("--no-save", action="store_true", help="do not record the run in the database")
    bench.add_argument("--tag", action="append", default=[], help="a tag for the saved run (repeatable)")
    bench.add_argument("--notes", default="", help="free text kept with the saved run")
    bench.add_argument("--json", action="store_true", help="print one JSON object")


def bench_request(args: argparse.Namespace) -> usecases.BenchRequest:
    """The request the bench options (add_bench_options) describe."""
    return usecases.BenchRequest(
        model=args.model,
        backend=args.backend,
        device=args.device,
        options=BackendOptions(
            threads=args.threads,
            inter_op_threads=args.inter_op_threads,
            execution_mode=args.execution_mode,
            graph_optimization_level=args.graph_optimization,
            inference_mode=not args.no_inference_mode,
        ),
        inputs=input_request(args),
        settings=BenchmarkSettings(warmup=args.warmup, min_iterations=args.iterations, min_duration_s=args.duration),
        trust_pickle=args.trust_pickle,
        provider_options=dict(parse_assignment(text) for text in args.provider_option),
        telemetry_hz=args.telemetry_hz or None,
        idle_baseline_s=args.idle_baseline,
        save=not args.no_save,
        db_url=db_url(args),
        tags=tuple(args.tag),
        notes=args.notes,
        scenario=_scenario_settings(args),
        find_max_rate=args.find_max_rate,
    )


def _scenario_settings(args: argparse.Namespace) -> ScenarioSettings | None:
    """--scenario, or --find-max-rate (which implies server), mapped onto LoadGen's minimums and warm-up."""
    scenario = "server" if args.find_max_rate else args.scenario
    if scenario is None:
        if args.rate is not None or args.latency_bound_ms is not None:
            raise InputError("--rate and --latency-bound-ms belong to --scenario server (or --find-max-rate)")
        return None
    if args.find_max_rate and args.scenario not in (None, "server"):
        raise InputError("--find-max-rate searches the server scenario's rate; drop --scenario or use server")
    # The search sets every trial's rate itself; a nominal 1 q/s only satisfies the settings' validation.
    rate = args.rate if args.rate is not None else (1.0 if args.find_max_rate else None)
    return ScenarioSettings(scenario=scenario, min_duration_s=args.duration, min_queries=args.iterations,
                            warmup=args.warmup, target_qps=rate, latency_bound_ms=args.latency_bound_ms, seed=args.seed)


def _bench(args: argparse.Namespace) -> int:
    with cancel_on_interrupt() as cancel:
        outcome = usecases.benchmark_model(bench_request(args), cancel=cancel,
                                           progress=None if args.json else progress_bar())
    print_out(json.dumps(outcome.to_dict(), indent=2, default=str) if args.json else outcome_text(outcome))
    if outcome.save_error:
        kept = (f"; it was written to {outcome.unsaved_export}: save it later with `{PROG} db import-unsaved "
                f"{outcome.unsaved_export}`" if outcome.unsaved_export else "")
        sys.stderr.write(f"{PROG}: error: the run was measured but not saved: {outcome.save_error}{kept}\n")
        return EXIT_USAGE
    return 130 if outcome.status == "cancelled" else 0


def _monitor(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise InputError(f"--duration must be positive, got {args.duration:g}")
    started = time.monotonic()

    def show(snapshot: TelemetrySnapshot) -> None:
        if not args.json:
            print_out(monitor_text(snapshot, time.monotonic() - started) + "\n")

    with cancel_on_interrupt() as cancel:
        final = usecases.monitor_telemetry(args.hz, args.duration, show, cancel=cancel)
    if args.json:
        print_out(json.dumps(_snapshot_dict(final, args.hz), indent=2))
    return 0


def _snapshot_dict(snapshot: TelemetrySnapshot, hz: float) -> dict:
    metrics = {}
    for key, spec in snapshot.specs.items():
        series = snapshot.series.get(key)
        values = series.values if series is not None else []
        metrics[key] = {**spec.to_dict(), "samples": len(values),
                        "latest": float(values[-1]) if len(values) else None,
                        "mean": float(values.mean()) if len(values) else None}
    return {"hz": hz, "live": snapshot.live, "metrics": metrics,
            "unavailable": [u.to_dict() for u in snapshot.unavailable],
            "sources": {name: status.state.value for name, status in snapshot.statuses.items()}}
