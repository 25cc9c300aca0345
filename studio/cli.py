"""`autoglm-studio`: the headless command line. Every command calls studio.session.

Errors a user can act on print one line to stderr and exit 2; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from collections.abc import Sequence

from engine.backends import BACKEND_NAMES, BackendOptions
from engine.backends.base import EXECUTION_MODES, GRAPH_OPTIMIZATION_LEVELS
from engine.errors import EngineError, InputError
from engine.inputs import parse_assignment
from engine.runner import BenchmarkSettings
from engine.scenarios import SCENARIOS, ScenarioSettings
from profilers.errors import TelemetryError
from profilers.sampler import DEFAULT_HZ
from storage import DatabaseCorruptError, StorageError
from studio import __version__, console, session
from studio.cli_export import add_export_commands
from studio.cli_optimize import add_generate_command, add_optimize_command
from studio.cli_runs import add_runs_commands
from studio.cli_sweeps import add_sweep_commands
from studio.cli_support import EXIT_INTERNAL, EXIT_USAGE, PROG, add_input_options, cancel_on_interrupt, db_url, \
    OneLineErrorParser, input_request, one_line, print_out, progress_bar



def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help="runs database: a SQLite path or any SQLAlchemy URL, e.g. postgresql://host/studio "
                             "(default: $AUTOGLM_STUDIO_DB, else the user data folder)")

    parser = OneLineErrorParser(prog=PROG, parents=[common], description="Profile, optimize and deploy neural networks on this machine.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)

    devices = commands.add_parser("devices", parents=[common], help="list CPU, GPU and NPU devices and what runs them")
    devices.add_argument("--json", action="store_true", help="print JSON")
    devices.set_defaults(handler=_devices)

    inspect = commands.add_parser("inspect", parents=[common], help="show a model's card: format, IO, parameters, ops")
    inspect.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    inspect.add_argument("--trust-pickle", action="store_true", help="allow unpickling a torch.save file (runs its code)")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=_inspect)

    bench = commands.add_parser("bench", parents=[common], help="measure cold start, latency and throughput")
    bench.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    _add_bench_options(bench)
    bench.set_defaults(handler=_bench)

    monitor = commands.add_parser("monitor", parents=[common], help="live view of every telemetry metric, and why others are unavailable")
    monitor.add_argument("--hz", type=float, default=DEFAULT_HZ, help=f"sampling rate, 1-100 Hz (default {DEFAULT_HZ:g})")
    monitor.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl+C)")
    monitor.add_argument("--json", action="store_true", help="print one JSON object at the end instead of live text")
    monitor.set_defaults(handler=_monitor)

    add_optimize_command(commands, common)
    add_generate_command(commands, common)
    add_runs_commands(commands, common)
    add_export_commands(commands, common)
    add_sweep_commands(commands, common)

    gui = commands.add_parser("gui", parents=[common], help="open the desktop studio (the default with no command)")
    gui.add_argument("model", nargs="?", help="model to open (default: the last one, else the built-in sample)")
    gui.set_defaults(handler=_gui)

    demo = commands.add_parser("demo", parents=[common], help="run the whole loop headless on the built-in sample models")
    demo.add_argument("--duration", type=float, default=1.0, metavar="S", help="minimum seconds per timed loop (default 1)")
    demo.set_defaults(handler=_demo)
    return parser


def _add_bench_options(bench: argparse.ArgumentParser) -> None:
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
    bench.add_argument("--duration", type=float, default=1.0, metavar="S", help="minimum timed seconds (default 1)")
    bench.add_argument("--trust-pickle", action="store_true", help="allow unpickling a torch.save file (runs its code)")
    bench.add_argument("--telemetry-hz", type=float, default=DEFAULT_HZ, metavar="N",
                       help=f"telemetry sampling rate during the run, 1-100 Hz (default {DEFAULT_HZ:g}; 0 turns it off)")
    bench.add_argument("--idle-baseline", type=float, default=0.0, metavar="S",
                       help="sample S seconds of idle power first and subtract it from the run's energy")
    bench.add_argument("--scenario", choices=SCENARIOS,
                       help="LoadGen-style scenario: single-stream (p90), offline (throughput), server (Poisson arrivals)")
    bench.add_argument("--rate", type=float, metavar="QPS", help="server scenario: target queries per second")
    bench.add_argument("--latency-bound-ms", type=float, metavar="X", help="server scenario: p99 latency bound")
    bench.add_argument("--find-max-rate", action="store_true",
                       help="server scenario: search the highest rate whose p99 stays within --latency-bound-ms")
    bench.add_argument("--no-save", action="store_true", help="do not record the run in the database")
    bench.add_argument("--tag", action="append", default=[], help="a tag for the saved run (repeatable)")
    bench.add_argument("--notes", default="", help="free text kept with the saved run")
    bench.add_argument("--json", action="store_true", help="print one JSON object")


def bench_request(args: argparse.Namespace) -> session.BenchRequest:
    return session.BenchRequest(
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


def _devices(args: argparse.Namespace) -> int:
    devices = session.list_devices()
    print_out(json.dumps([d.to_dict() for d in devices], indent=2) if args.json else console.devices_text(devices))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    handle = session.open_model(args.model, trust_pickle=args.trust_pickle)
    print_out(json.dumps(handle.to_dict(), indent=2) if args.json else console.model_text(handle))
    return 0


def _bench(args: argparse.Namespace) -> int:
    request = bench_request(args)
    with cancel_on_interrupt() as cancel:
        report = session.benchmark(request, cancel=cancel, progress=None if args.json else progress_bar())
    text = console.scenario_text(report) if request.scenario is not None else console.bench_text(report)
    print_out(json.dumps(report.to_dict(), indent=2, default=str) if args.json else text)
    if report.save_error:
        kept = f"; its samples were written to {report.unsaved_export}" if report.unsaved_export else ""
        sys.stderr.write(f"{PROG}: error: the run was measured but not saved: {report.save_error}{kept}\n")
        return EXIT_USAGE
    return 130 if report.result.status == "cancelled" else 0


def _monitor(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise InputError(f"--duration must be positive, got {args.duration:g}")
    started = time.monotonic()

    def show(snapshot) -> None:
        if not args.json:
            print_out(console.monitor_text(snapshot, time.monotonic() - started) + "\n")

    with cancel_on_interrupt() as cancel:
        final = session.monitor(args.hz, args.duration, show, cancel=cancel)
    if args.json:
        print_out(json.dumps(_snapshot_dict(final, args.hz), indent=2))
    return 0


def _snapshot_dict(snapshot, hz: float) -> dict:
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


QT_X11_PACKAGES = "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0"


def window_problem() -> str | None:
    """Why Qt could not open an X11 window here, known before Qt aborts the process over it."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM") or not os.environ.get("DISPLAY"):
        return None
    import ctypes.util
    import importlib.util
    import subprocess

    missing = [] if ctypes.util.find_library("xcb-cursor") else ["libxcb-cursor.so.0"]  # loaded at run time
    spec = importlib.util.find_spec("PySide6")
    plugin = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so" if spec and spec.origin else None
    if plugin is not None and plugin.exists():
        try:
            linked = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            linked = ""
        missing += sorted({line.split()[0] for line in linked.splitlines() if "not found" in line})
    if not missing:
        return None
    return (f"the desktop window on X11 needs system libraries that are missing ({', '.join(missing)}); "
            f"install them with: sudo apt install {QT_X11_PACKAGES}")


def display_available() -> bool:
    """A window can be shown: a desktop OS, an X or Wayland display, or a Qt platform chosen explicitly."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _gui(args: argparse.Namespace) -> int:
    problem = window_problem()
    if problem:
        raise EngineError(f"cannot open the window: {problem}")
    from studio.ui.app import run_gui  # Qt loads only when a window is wanted

    return run_gui(args.model, db_url(args))


def _demo(args: argparse.Namespace) -> int:
    print_out("Open-AutoGLM Studio demo: every step headless on the built-in sample models.\n")
    print_out(console.devices_text(session.list_devices()))
    with cancel_on_interrupt() as cancel:
        for name, path in session.sample_models().items():
            print_out(f"\n== sample {name} ==\n")
            print_out(console.model_text(session.open_model(path)))
            request = session.BenchRequest(model=path, settings=BenchmarkSettings(warmup=20, min_iterations=200, min_duration_s=args.duration))
            report = session.benchmark(request, cancel=cancel, progress=progress_bar())
            print_out("\n" + console.bench_text(report))
            if report.result.status == "cancelled":
                return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    if not getattr(args, "handler", None):
        problem = window_problem() if display_available() else "no display found"
        if problem:
            sys.stderr.write(f"{PROG}: {problem}, so running the headless demo (see --help for commands)\n")
            args = parser.parse_args(["demo"])
        else:
            args = parser.parse_args(["gui"])
    try:
        return args.handler(args)
    except (EngineError, TelemetryError, StorageError, OSError) as error:
        if debug:
            traceback.print_exc()
        hint = " Run `autoglm-studio db move-aside` to do so." if isinstance(error, DatabaseCorruptError) else ""
        sys.stderr.write(f"{PROG}: error: {one_line(error)}{hint}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as error:  # a bug of ours: still one line, and the traceback on request
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{PROG}: internal error: {type(error).__name__}: {one_line(error)} (rerun with --debug and report it)\n")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
