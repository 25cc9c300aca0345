"""`autoglm-studio`: the headless command line. Every command calls studio.session.

Errors a user can act on print one line to stderr and exit 2; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from engine.backends import BACKEND_NAMES, BackendOptions
from engine.backends.base import EXECUTION_MODES, GRAPH_OPTIMIZATION_LEVELS
from engine.errors import EngineError, InputError
from engine.inputs import InputRequest, parse_assignment, parse_dim_options, parse_shape_options
from engine.recipe import CALIBRATION_METHODS, GRAPH_LEVELS, PRUNING_IMPORTANCES, Recipe
from engine.runner import BenchmarkSettings
from profilers.errors import TelemetryError
from storage import RUN_STATUSES, DatabaseCorruptError, RunFilter, StorageError
from profilers.sampler import DEFAULT_HZ
from studio import __version__, console, session

EXIT_USAGE = 2
QUANTIZE_CHOICES = {"dynamic": "dynamic_int8", "static": "static_int8", "fp16": "fp16", "auto": "auto"}
EXIT_INTERNAL = 1
PROG = "autoglm-studio"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help="runs database: a SQLite path or any SQLAlchemy URL, e.g. postgresql://host/studio "
                             "(default: $AUTOGLM_STUDIO_DB, else the user data folder)")

    parser = _Parser(prog=PROG, parents=[common], description="Profile, optimize and deploy neural networks on this machine.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

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

    _add_optimize_command(commands, common)
    _add_runs_commands(commands, common)
    database = commands.add_parser("db", parents=[common], help="manage the runs database")
    database_commands = database.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser, required=True)
    aside = database_commands.add_parser("move-aside", parents=[common],
                                         help="rename a damaged SQLite database (it is kept, never deleted)")
    aside.set_defaults(handler=_db_move_aside)

    gui = commands.add_parser("gui", parents=[common], help="open the desktop studio (the default with no command)")
    gui.add_argument("model", nargs="?", help="model to open (default: the last one, else the built-in sample)")
    gui.set_defaults(handler=_gui)

    demo = commands.add_parser("demo", parents=[common], help="run the whole loop headless on the built-in sample models")
    demo.add_argument("--duration", type=float, default=1.0, metavar="S", help="minimum seconds per timed loop (default 1)")
    demo.set_defaults(handler=_demo)
    return parser


def _add_runs_commands(commands, common: argparse.ArgumentParser) -> None:
    runs = commands.add_parser("runs", parents=[common], help="list, show, compare, export and delete saved runs")
    actions = runs.add_subparsers(dest="runs_command", metavar="ACTION", parser_class=_Parser, required=True)

    listing = actions.add_parser("list", parents=[common], help="saved runs, newest first")
    listing.add_argument("--model", help="a model's path fragment or sha256 prefix")
    listing.add_argument("--device", help="e.g. cpu or cuda:0")
    listing.add_argument("--status", choices=RUN_STATUSES)
    listing.add_argument("--tag")
    listing.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="started on or after this day (UTC)")
    listing.add_argument("--until", type=_date, metavar="YYYY-MM-DD", help="started before this day (UTC)")
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_runs_list)

    show = actions.add_parser("show", parents=[common], help="one run: settings, summary, energy, environment")
    show.add_argument("run_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_runs_show)

    compare = actions.add_parser("compare", parents=[common], help="2-8 runs side by side; the first is the baseline")
    compare.add_argument("run_ids", type=int, nargs="+", metavar="ID")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(handler=_runs_compare)

    export = actions.add_parser("export", parents=[common], help="a run with its raw samples, as CSV or JSON")
    export.add_argument("run_id", type=int, metavar="ID")
    export.add_argument("--format", choices=("csv", "json"), required=True)
    export.add_argument("-o", "--output", required=True, metavar="PATH")
    export.set_defaults(handler=_runs_export)

    delete = actions.add_parser("delete", parents=[common], help="a run and all its samples")
    delete.add_argument("run_id", type=int, metavar="ID")
    delete.set_defaults(handler=_runs_delete)


def _date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, metavar="N", help="size of the batch dimension")
    parser.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS", help="an input's full shape, e.g. input_ids=1x128")
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=N", help="a symbolic dim's size, e.g. sequence=256")
    parser.add_argument("--inputs", metavar="FILE.npz", help="real inputs: an .npz whose keys are the input names")
    parser.add_argument("--seed", type=int, default=0, help="seed for synthetic inputs (default 0)")


def _input_request(args: argparse.Namespace) -> InputRequest:
    if args.batch is not None and args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    return InputRequest(shapes=parse_shape_options(args.shape), dims=parse_dim_options(args.dim), batch=args.batch,
                        npz=Path(args.inputs) if args.inputs else None, seed=args.seed)


def _add_optimize_command(commands, common: argparse.ArgumentParser) -> None:
    optimize = commands.add_parser("optimize", parents=[common], help="prune, factorize and quantize a model, graded on fidelity")
    optimize.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    optimize.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="where the optimized model goes")
    _add_input_options(optimize)
    optimize.add_argument("--device", default="cpu", help="where candidates are timed (default cpu)")
    optimize.add_argument("--threads", type=int, metavar="N", help="intra-op threads for timing (default 1)")
    optimize.add_argument("--recipe", metavar="FILE.json", help="a saved recipe; the options below override it")
    optimize.add_argument("--prune", choices=("structured", "unstructured"), help="channel/head pruning, or L1 sparsity")
    optimize.add_argument("--prune-ratio", type=float, metavar="R", help="share of channels or weights removed (0-1)")
    optimize.add_argument("--prune-importance", choices=PRUNING_IMPORTANCES, help="structured pruning criterion")
    optimize.add_argument("--low-rank", type=float, metavar="R", help="SVD of Linear/MatMul weights keeping this rank ratio")
    optimize.add_argument("--quantize", choices=tuple(QUANTIZE_CHOICES), help="INT8 (dynamic or static QDQ), FP16 or auto")
    optimize.add_argument("--calibration", metavar="SRC", help="static INT8 calibration data: .npz or a folder of .npy/.npz")
    optimize.add_argument("--calibration-samples", type=int, metavar="N", help="calibration samples (default 32)")
    optimize.add_argument("--calibration-method", choices=CALIBRATION_METHODS)
    optimize.add_argument("--per-channel", action="store_true", help="per-channel INT8 weights")
    optimize.add_argument("--budget-cosine", type=float, metavar="X", help="minimum cosine similarity to the original")
    optimize.add_argument("--budget-top1-disagreement", type=float, metavar="X", help="maximum share of changed top-1")
    optimize.add_argument("--budget-relative-error", type=float, metavar="X", help="maximum relative L2 error")
    optimize.add_argument("--graph-level", choices=GRAPH_LEVELS, help="ONNX Runtime graph optimization saved as a step")
    optimize.add_argument("--accuracy-data", metavar="FILE.npz", help="inputs plus 'labels', for task accuracy")
    optimize.add_argument("--compare-seconds", type=float, default=2.0, metavar="S",
                          help="seconds per model and round for the before/after latency (0 skips it)")
    optimize.add_argument("--no-save", action="store_true", help="do not record the optimized model in the database")
    optimize.add_argument("--trust-pickle", action="store_true", help="allow unpickling a torch.save file (runs its code)")
    optimize.add_argument("--json", action="store_true", help="print one JSON object")
    optimize.set_defaults(handler=_optimize)


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The recipe file (or defaults) with the command-line options laid over it, validated as a whole."""
    data = (Recipe.load(args.recipe) if args.recipe else Recipe()).to_dict()
    overrides = {
        ("pruning", "method"): args.prune, ("pruning", "ratio"): args.prune_ratio,
        ("pruning", "importance"): args.prune_importance,
        ("low_rank", "method"): "rank_ratio" if args.low_rank is not None else None,
        ("low_rank", "rank_ratio"): args.low_rank,
        ("quantization", "method"): QUANTIZE_CHOICES.get(args.quantize),
        ("quantization", "per_channel"): True if args.per_channel else None,
        ("quantization", "calibration_method"): args.calibration_method,
        ("calibration", "source"): args.calibration, ("calibration", "samples"): args.calibration_samples,
        ("budget", "min_cosine"): args.budget_cosine, ("budget", "max_top1_disagreement"): args.budget_top1_disagreement,
        ("budget", "max_relative_error"): args.budget_relative_error, ("graph", "level"): args.graph_level,
    }
    for (section, name), value in overrides.items():
        if value is not None:
            data[section][name] = value
    return Recipe.from_dict(data)


def _optimize(args: argparse.Namespace) -> int:
    request = session.OptimizeRequest(
        model=args.model, recipe=recipe_from_args(args), output=args.output, inputs=_input_request(args),
        device=args.device, threads=args.threads, accuracy_data=args.accuracy_data,
        compare_seconds=args.compare_seconds, save=not args.no_save, db_url=_db(args), trust_pickle=args.trust_pickle,
    )
    if not args.json:
        _, _, plan = session.plan_optimization_for(request)
        _print(console.plan_text(plan) + "\n")
    with _cancel_on_interrupt() as cancel:
        report = session.optimize_model(request, cancel=cancel, progress=None if args.json else _progress_bar())
    _print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else console.optimize_text(report))
    if report.result.status != "completed":
        violations = "; ".join(report.result.fidelity.budget.violations) if report.result.fidelity.budget else ""
        sys.stderr.write(f"{PROG}: error: the optimized model misses the accuracy budget ({violations}); nothing written\n")
        return EXIT_USAGE
    return 0


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
    _add_input_options(bench)
    bench.add_argument("--warmup", type=int, default=10, metavar="N", help="uncounted warm-up iterations (default 10)")
    bench.add_argument("--iterations", type=int, default=100, metavar="N", help="minimum timed iterations (default 100)")
    bench.add_argument("--duration", type=float, default=1.0, metavar="S", help="minimum timed seconds (default 1)")
    bench.add_argument("--trust-pickle", action="store_true", help="allow unpickling a torch.save file (runs its code)")
    bench.add_argument("--telemetry-hz", type=float, default=DEFAULT_HZ, metavar="N",
                       help=f"telemetry sampling rate during the run, 1-100 Hz (default {DEFAULT_HZ:g}; 0 turns it off)")
    bench.add_argument("--idle-baseline", type=float, default=0.0, metavar="S",
                       help="sample S seconds of idle power first and subtract it from the run's energy")
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
        inputs=_input_request(args),
        settings=BenchmarkSettings(warmup=args.warmup, min_iterations=args.iterations, min_duration_s=args.duration),
        trust_pickle=args.trust_pickle,
        provider_options=dict(parse_assignment(text) for text in args.provider_option),
        telemetry_hz=args.telemetry_hz or None,
        idle_baseline_s=args.idle_baseline,
        save=not args.no_save,
        db_url=_db(args),
        tags=tuple(args.tag),
        notes=args.notes,
    )


def _devices(args: argparse.Namespace) -> int:
    devices = session.list_devices()
    _print(json.dumps([d.to_dict() for d in devices], indent=2) if args.json else console.devices_text(devices))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    handle = session.open_model(args.model, trust_pickle=args.trust_pickle)
    _print(json.dumps(handle.to_dict(), indent=2) if args.json else console.model_text(handle))
    return 0


def _bench(args: argparse.Namespace) -> int:
    request = bench_request(args)
    with _cancel_on_interrupt() as cancel:
        report = session.benchmark(request, cancel=cancel, progress=None if args.json else _progress_bar())
    _print(json.dumps(report.to_dict(), indent=2) if args.json else console.bench_text(report))
    if report.save_error:
        kept = f"; its samples were written to {report.unsaved_export}" if report.unsaved_export else ""
        sys.stderr.write(f"{PROG}: error: the run was measured but not saved: {report.save_error}{kept}\n")
        return EXIT_USAGE
    return 130 if report.result.status == "cancelled" else 0


def _db(args: argparse.Namespace) -> str | None:
    return getattr(args, "db", None)


def _runs_list(args: argparse.Namespace) -> int:
    run_filter = RunFilter(model=args.model, device=args.device, status=args.status, tag=args.tag,
                           started_after=args.since, started_before=args.until)
    page = session.list_runs(_db(args), run_filter, offset=args.offset, limit=args.limit)
    if args.json:
        _print(json.dumps({"total": page.total, "offset": args.offset, "runs": [r.to_dict() for r in page.runs]}, indent=2))
    else:
        _print(console.runs_text(page, args.offset))
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    data = session.load_run(_db(args), args.run_id)
    if args.json:
        _print(json.dumps({**data.record.to_dict(), "latency_samples": int(data.latency.latencies_ns.size)}, indent=2))
    else:
        _print(console.run_text(data))
    return 0


def _runs_compare(args: argparse.Namespace) -> int:
    comparison = session.compare_runs(_db(args), args.run_ids)
    _print(json.dumps(comparison.to_dict(), indent=2) if args.json else console.comparison_text(comparison))
    return 0


def _runs_export(args: argparse.Namespace) -> int:
    exported = session.export_run(_db(args), args.run_id, args.output, args.format)
    _print(f"run {args.run_id} written to {exported.path} ({exported.size_bytes:,} bytes, sha256 {exported.sha256[:12]})")
    return 0


def _runs_delete(args: argparse.Namespace) -> int:
    session.delete_run(_db(args), args.run_id)
    _print(f"run {args.run_id} deleted with its samples")
    return 0


def _db_move_aside(args: argparse.Namespace) -> int:
    moved = session.move_store_aside(_db(args))
    _print(f"the damaged database was moved to {moved}; a new one is created on next use")
    return 0


def _monitor(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise InputError(f"--duration must be positive, got {args.duration:g}")
    started = time.monotonic()

    def show(snapshot) -> None:
        if not args.json:
            _print(console.monitor_text(snapshot, time.monotonic() - started) + "\n")

    with _cancel_on_interrupt() as cancel:
        final = session.monitor(args.hz, args.duration, show, cancel=cancel)
    if args.json:
        _print(json.dumps(_snapshot_dict(final, args.hz), indent=2))
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


def display_available() -> bool:
    """A window can be shown: a desktop OS, an X or Wayland display, or a Qt platform chosen explicitly."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _gui(args: argparse.Namespace) -> int:
    from studio.ui.app import run_gui  # Qt loads only when a window is wanted

    return run_gui(args.model, _db(args))


def _demo(args: argparse.Namespace) -> int:
    _print("Open-AutoGLM Studio demo: every step headless on the built-in sample models.\n")
    _print(console.devices_text(session.list_devices()))
    with _cancel_on_interrupt() as cancel:
        for name, path in session.sample_models().items():
            _print(f"\n== sample {name} ==\n")
            _print(console.model_text(session.open_model(path)))
            request = session.BenchRequest(model=path, settings=BenchmarkSettings(warmup=20, min_iterations=200, min_duration_s=args.duration))
            report = session.benchmark(request, cancel=cancel, progress=_progress_bar())
            _print("\n" + console.bench_text(report))
            if report.result.status == "cancelled":
                return 130
    return 0


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _progress_bar():
    """A one-line progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return None

    def show(fraction: float, message: str) -> None:
        filled = int(fraction * 30)
        end = "\n" if fraction >= 1.0 else ""
        sys.stderr.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {fraction:4.0%} {message:<40}{end}")
        sys.stderr.flush()

    return show


@contextlib.contextmanager
def _cancel_on_interrupt() -> Iterator[threading.Event]:
    """Ctrl+C stops the run cooperatively, so the samples taken so far are still reported."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: cancel.set())
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def _one_line(error: BaseException) -> str:
    """Library messages (psycopg's, for one) can span lines; the CLI promises one."""
    return " ".join(str(error).split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    if not getattr(args, "handler", None):
        if not display_available():
            sys.stderr.write(f"{PROG}: no display found, so running the headless demo (see --help for commands)\n")
            args = parser.parse_args(["demo"])
        else:
            args = parser.parse_args(["gui"])
    try:
        return args.handler(args)
    except (EngineError, TelemetryError, StorageError, OSError) as error:
        if debug:
            traceback.print_exc()
        hint = " Run `autoglm-studio db move-aside` to do so." if isinstance(error, DatabaseCorruptError) else ""
        sys.stderr.write(f"{PROG}: error: {_one_line(error)}{hint}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as error:  # a bug of ours: still one line, and the traceback on request
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{PROG}: internal error: {type(error).__name__}: {_one_line(error)} (rerun with --debug and report it)\n")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
