"""What every CLI command shares: output, progress, Ctrl+C as cooperative cancel, the option groups for inputs and
trusting pickles, and error lines."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from engine.errors import InputError
from engine.model.image_samples import CHANNEL_ORDERS, ImageNormalization, parse_channel_values
from engine.model.inputs import InputRequest, parse_dim_options, parse_shape_options
from engine.model.sample_data import SampleOptions

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
    """A one-line progress bar on stderr when it is a terminal; else progress lines (ProgressLines), so a long
    run in a log or a pipe is not silent."""
    if not sys.stderr.isatty():
        return ProgressLines()

    def show(fraction: float, message: str) -> None:
        filled = int(fraction * 30)
        end = "\n" if fraction >= 1.0 else ""
        sys.stderr.write(f"\r[{'#' * filled}{' ' * (30 - filled)}] {fraction:4.0%} {message:<40}{end}")
        sys.stderr.flush()

    return show


class ProgressLines:
    """Progress as lines on stderr: "[ 42%  1m05s] stage: step". Nothing in the first `interval_s` seconds (a
    quick command, or one that fails at once, keeps its output and its one error line alone); after that a line
    when the stage changes (the message's text before its first colon, else its first word), at the end, and
    otherwise at most one every `interval_s` seconds."""

    def __init__(self, interval_s: float = 5.0, clock: Callable[[], float] | None = None):
        self._interval_s, self._clock = interval_s, clock or time.monotonic
        self._started = self._clock()
        self._last_line: float | None = None
        self._stage: str | None = None

    def __call__(self, fraction: float, message: str) -> None:
        now = self._clock()
        if now - self._started < self._interval_s:
            return
        stage = message.split(":", 1)[0] if ":" in message else message.split(" ", 1)[0]
        due = self._last_line is None or now - self._last_line >= self._interval_s
        if not (due or stage != self._stage or fraction >= 1.0):
            return
        self._last_line, self._stage = now, stage
        elapsed = int(now - self._started)
        minutes, seconds = divmod(elapsed, 60)
        sys.stderr.write(f"[{fraction:4.0%} {f'{minutes}m{seconds:02d}s' if minutes else f'{seconds}s':>6}] "
                         f"{message}\n")
        sys.stderr.flush()


@contextlib.contextmanager
def cancel_on_interrupt() -> Iterator[threading.Event]:
    """The first Ctrl+C (or SIGTERM) stops the work cooperatively, so what was measured is still reported and
    saved (as cancelled); the second ends the process at once, even when the main thread is stuck in a model load
    or an inference that never returns. Signals are read by a watcher thread from Python's wakeup pipe, which the
    interpreter writes to from its C-level handler whatever the main thread is doing."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    previous = {number: signal.signal(number, lambda signum, frame: None) for number in STOP_SIGNALS}
    watcher = threading.Thread(target=_watch_signals, args=(read_end, cancel), name="stop-signals", daemon=True)
    watcher.start()
    try:
        yield cancel
    finally:
        signal.set_wakeup_fd(previous_fd)
        for number, handler in previous.items():
            signal.signal(number, handler)
        os.close(write_end)  # the watcher reads end-of-file and returns
        watcher.join(timeout=1.0)
        os.close(read_end)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _watch_signals(read_end: int, cancel: threading.Event) -> None:
    received = 0
    while True:
        try:
            data = os.read(read_end, 64)
        except OSError:
            return
        if not data:
            return
        for number in data:
            if number not in STOP_SIGNALS:
                continue
            received += 1
            if received == 1:
                cancel.set()
                sys.stderr.write(f"\n{PROG}: stopping: finishing the current step and keeping what was measured "
                                 "(press Ctrl+C again to quit at once)\n")
            else:
                sys.stderr.write(f"\n{PROG}: quitting at once\n")
                sys.stderr.flush()
                os._exit(130)


def finite(text: str) -> float:
    """An argparse type: a finite number ("nan" and "inf" are refused, as float() would accept them)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


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
    parser.add_argument("--inputs", metavar="PATH", help="real inputs: an .npz whose keys are the input names, a folder "
                        "of images (resized to the input's shape), or a .txt file of texts, one a line (with --tokenizer)")


def add_sample_options(parser: argparse.ArgumentParser) -> None:
    """How --inputs turns images or text into inputs (`optimize` takes these from its calibration options)."""
    parser.add_argument("--tokenizer", metavar="PATH", help="for a .txt --inputs: a tokenizer.json or a Hugging Face "
                        "folder holding one")
    parser.add_argument("--image-divisor", type=finite, default=255.0, metavar="D",
                        help="images: pixels (0-255) are divided by D before mean and std (default 255)")
    parser.add_argument("--image-mean", default="0", metavar="M[,M,M]", help="images: mean per channel (default 0)")
    parser.add_argument("--image-std", default="1", metavar="S[,S,S]", help="images: std per channel (default 1)")
    parser.add_argument("--channel-order", choices=CHANNEL_ORDERS, default="rgb", help="images: channel order (rgb)")


def add_input_options(parser: argparse.ArgumentParser, *, sample_options: bool = True) -> None:
    """The shape options, with one batch size and the synthetic inputs' seed (and add_sample_options)."""
    parser.add_argument("--batch", type=int, metavar="N", help="size of the batch dimension")
    add_shape_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed for synthetic inputs (default 0)")
    if sample_options:
        add_sample_options(parser)


def sample_options(args: argparse.Namespace) -> SampleOptions:
    """The options add_sample_options gave."""
    normalization = ImageNormalization(args.image_divisor, parse_channel_values(args.image_mean, "--image-mean"),
                                       parse_channel_values(args.image_std, "--image-std"), args.channel_order)
    return SampleOptions(Path(args.tokenizer) if args.tokenizer else None, normalization)


def shape_request(args: argparse.Namespace, samples: SampleOptions | None = None) -> InputRequest:
    """The inputs given by the shape options (add_shape_options); `samples` defaults to add_sample_options'."""
    return InputRequest(shapes=parse_shape_options(args.shape), dims=parse_dim_options(args.dim),
                        npz=Path(args.inputs) if args.inputs else None,
                        samples=samples if samples is not None else sample_options(args))


def input_request(args: argparse.Namespace, samples: SampleOptions | None = None) -> InputRequest:
    """The inputs given by the input options (add_input_options)."""
    if args.batch is not None and args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    return replace(shape_request(args, samples), batch=args.batch, seed=args.seed)
