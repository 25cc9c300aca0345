"""What every CLI command shares: output, progress, Ctrl+C as cooperative cancel, the option groups for inputs and
trusting pickles, and error lines."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from engine.errors import InputError
from engine.model.inputs import InputRequest, parse_dim_options, parse_shape_options

EXIT_USAGE = 2
EXIT_INTERNAL = 1
PROG = "autoglm-studio"


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def print_out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def progress_bar():
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
def cancel_on_interrupt() -> Iterator[threading.Event]:
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


def one_line(error: BaseException) -> str:
    """Library messages (psycopg's, for one) can span lines; the CLI promises one."""
    return " ".join(str(error).split())


def db_url(args: argparse.Namespace) -> str | None:
    return getattr(args, "db", None)


def add_trust_pickle_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-pickle", action="store_true", help="allow unpickling a torch.save file (runs its code)")


def add_shape_options(parser: argparse.ArgumentParser) -> None:
    """--shape, --dim and --inputs: the model's input shapes, or real inputs, for every command that runs it."""
    parser.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS", help="an input's full shape, e.g. input_ids=1x128")
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=N", help="a symbolic dim's size, e.g. sequence=256")
    parser.add_argument("--inputs", metavar="FILE.npz", help="real inputs: an .npz whose keys are the input names")


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """The shape options, with one batch size and the synthetic inputs' seed."""
    parser.add_argument("--batch", type=int, metavar="N", help="size of the batch dimension")
    add_shape_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed for synthetic inputs (default 0)")


def shape_request(args: argparse.Namespace) -> InputRequest:
    """The inputs given by the shape options (add_shape_options)."""
    return InputRequest(shapes=parse_shape_options(args.shape), dims=parse_dim_options(args.dim),
                        npz=Path(args.inputs) if args.inputs else None)


def input_request(args: argparse.Namespace) -> InputRequest:
    """The inputs given by the input options (add_input_options)."""
    if args.batch is not None and args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    return replace(shape_request(args), batch=args.batch, seed=args.seed)
