"""`autoglm-studio`: the headless command line. Every command calls studio.usecases and prints through studio.present;
this module assembles the command groups' parsers, turns errors into one line, and chooses the window or the demo.

Errors a user can act on print one line to stderr and exit 2; `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from engine import runtime_logs
from engine.errors import EngineError
from engine.measure.runner import BenchmarkSettings
from profilers.errors import TelemetryError
from storage import DatabaseCorruptError, StorageError
from studio import __version__, usecases
from studio.cli.bench import add_bench_commands
from studio.cli.export import add_export_commands
from studio.cli.generate import add_generate_command
from studio.cli.models import add_model_commands
from studio.cli.optimize import add_optimize_command
from studio.cli.options import (
    cancel_on_interrupt,
    db_url,
    EXIT_INTERNAL,
    EXIT_USAGE,
    finite,
    one_line,
    OneLineErrorParser,
    print_out,
    PROG,
    progress_bar,
)
from studio.cli.profile import add_profile_commands
from studio.cli.runs import add_runs_commands
from studio.cli.sweep import add_sweep_commands
from studio.present.benchmarks import outcome_text
from studio.present.models import devices_text, model_text


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help="runs database: a SQLite path or any SQLAlchemy URL, e.g. postgresql://host/studio "
                             "(default: $AUTOGLM_STUDIO_DB, else the user data folder)")

    parser = OneLineErrorParser(prog=PROG, parents=[common], description="Profile, optimize and deploy neural networks on this machine.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)

    add_model_commands(commands, common)
    add_bench_commands(commands, common)
    add_optimize_command(commands, common)
    add_generate_command(commands, common)
    add_runs_commands(commands, common)
    add_export_commands(commands, common)
    add_sweep_commands(commands, common)
    add_profile_commands(commands, common)

    gui = commands.add_parser("gui", parents=[common], help="open the desktop studio (the default with no command)")
    gui.add_argument("model", nargs="?", help="model to open (default: the last one, else the built-in sample)")
    gui.set_defaults(handler=_gui)

    demo = commands.add_parser("demo", parents=[common], help="run the whole loop headless on the built-in sample models")
    demo.add_argument("--duration", type=finite, default=1.0, metavar="S", help="minimum seconds per timed loop (default 1)")
    demo.set_defaults(handler=_demo)
    return parser


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
    print_out(devices_text(usecases.list_devices()))
    with cancel_on_interrupt() as cancel:
        for name, path in usecases.sample_models().items():
            print_out(f"\n== sample {name} ==\n")
            print_out(model_text(usecases.open_model(path)))
            request = usecases.BenchRequest(model=path, settings=BenchmarkSettings(warmup=20, min_iterations=200, min_duration_s=args.duration))
            outcome = usecases.benchmark_model(request, cancel=cancel, progress=progress_bar())
            print_out("\n" + outcome_text(outcome))
            if outcome.status == "cancelled":
                return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 must not make printing it fail
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    runtime_logs.configure(verbose=debug)  # third-party log lines only with --debug
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
        given = f" --db {shlex.quote(args.db)}" if getattr(args, "db", None) else ""
        hint = f" Run `{PROG} db move-aside{given}` to do so." if isinstance(error, DatabaseCorruptError) else ""
        sys.stderr.write(f"{PROG}: error: {one_line(error)}{hint}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as error:  # a bug of ours: still one line, with the traceback kept in a log file
        if debug:
            traceback.print_exc()
        kept = _keep_traceback()
        where = f"the traceback is in {kept}" if kept else "rerun with --debug for the traceback"
        sys.stderr.write(f"{PROG}: internal error: {type(error).__name__}: {one_line(error)} ({where}; please "
                         "report it)\n")
        return EXIT_INTERNAL


def _keep_traceback() -> Path | None:
    """Writes the exception being handled, with its traceback, to a file in the user's log folder
    (AUTOGLM_STUDIO_LOGS overrides it); None when even that cannot be written."""
    import platformdirs

    folder = Path(os.environ.get("AUTOGLM_STUDIO_LOGS") or platformdirs.user_log_dir("autoglm-studio", appauthor=False))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"internal-error-{stamp}-{os.getpid()}.txt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{PROG} {__version__}: {' '.join(sys.argv)}\n\n{traceback.format_exc()}", encoding="utf-8",
                        errors="backslashreplace")
    except OSError:
        return None
    return path


if __name__ == "__main__":
    sys.exit(main())
