"""`sweep`: a grid of configurations measured point by point, resumably: where a model runs best here."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from engine.backends import BACKEND_NAMES
from engine.errors import InputError
from engine.measure.adaptive_stopping import StoppingRule
from profilers.sampler import DEFAULT_HZ
from studio.cli.options import (
    add_sample_options,
    add_shape_options,
    add_trust_pickle_option,
    cancel_on_interrupt,
    db_url,
    EXIT_USAGE,
    finite,
    print_out,
    PROG,
    progress_bar,
    shape_request,
)
from studio.present.sweeps import sweep_text
from studio.usecases.sweeps import SweepRequest, parse_list, sweep_model, thread_count

PERCENTILES = ("p50", "p90", "p95", "p99")


def _list_of(convert: Callable[[str], object], what: str) -> Callable[[str], tuple]:
    """An argparse type for comma-separated values (a bad one is a one-line usage error)."""
    def parse(text: str) -> tuple:
        try:
            return parse_list(text, convert, what)
        except InputError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def add_sweep_commands(commands, common: argparse.ArgumentParser) -> None:
    sweep = commands.add_parser("sweep", parents=[common],
                                help="measure a batch × threads × provider × recipe grid; frontier and best points")
    sweep.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    sweep.add_argument("--batch", type=_list_of(int, "batch sizes"), metavar="1,2,4,8", help="batch sizes (default 1)")
    sweep.add_argument("--threads", type=_list_of(thread_count, "thread counts or 'default'"), metavar="1,2",
                       help="intra-op thread counts; 'default' leaves the runtime's choice (default: default)")
    sweep.add_argument("--providers", type=_list_of(str, "devices or providers"), metavar="cpu,cuda:0",
                       help="device ids (see `devices`) or ONNX Runtime provider names (default cpu)")
    sweep.add_argument("--recipes", type=_list_of(str, "recipe files"), metavar="a.json,b.json",
                       help="recipes to optimize the model with first; the original model is measured too")
    sweep.add_argument("--latency-limit-ms", type=finite, metavar="X", help="the chosen point keeps latency under X")
    sweep.add_argument("--latency-percentile", choices=PERCENTILES, help="the latency the limit and frontier use "
                                                                         "(default p99)")
    sweep.add_argument("--seed", type=int, help="seed of the point order and the synthetic inputs (default 0)")
    sweep.add_argument("--point-cap-s", type=finite, metavar="S", help="time cap per point (default 10 s)")
    sweep.add_argument("--min-duration", type=finite, metavar="S", help="minimum timed seconds per point (default 0.5)")
    sweep.add_argument("--min-iterations", type=int, metavar="N", help="minimum iterations per point (default 50)")
    sweep.add_argument("--warmup", type=int, metavar="N", help="uncounted warm-up iterations per point (default 10)")
    sweep.add_argument("--ci-half-width", type=finite, metavar="R",
                       help="stop a point once its median's 95%% CI is within ±R (default 0.02; 0 measures the "
                            "minimums only)")
    sweep.add_argument("--backend", choices=BACKEND_NAMES,
                       help="runtime of the original model (default: the format's)")
    add_shape_options(sweep)
    add_sample_options(sweep)
    sweep.add_argument("--telemetry-hz", type=finite, default=DEFAULT_HZ, metavar="N",
                       help=f"telemetry rate per point, for energy (default {DEFAULT_HZ:g}; 0 turns it off)")
    sweep.add_argument("--resume", type=int, metavar="ID", help="measure the points of sweep ID not done yet")
    sweep.add_argument("--notes", default="", help="free text kept with the sweep")
    add_trust_pickle_option(sweep)
    sweep.add_argument("--json", action="store_true", help="print one JSON object")
    sweep.set_defaults(handler=_sweep)


def sweep_request(args: argparse.Namespace) -> SweepRequest:
    if args.point_cap_s is not None and not args.point_cap_s > 0:
        raise InputError(f"--point-cap-s must be above 0 seconds, got {args.point_cap_s:g}")
    given = {"max_duration_s": args.point_cap_s, "min_duration_s": args.min_duration,
             "min_iterations": args.min_iterations, "warmup": args.warmup}
    given = {name: value for name, value in given.items() if value is not None}
    if args.ci_half_width is not None:
        given["ci_half_width"] = args.ci_half_width or None
    if "max_duration_s" in given and "min_duration_s" not in given:  # a short cap lowers the minimum with it
        given["min_duration_s"] = min(StoppingRule().min_duration_s, given["max_duration_s"])
    stopping = StoppingRule(**given) if given else None
    inputs = shape_request(args)  # seeded with the sweep's seed
    return SweepRequest(model=args.model, batches=args.batch, threads=args.threads, providers=args.providers,
                        recipes=args.recipes, seed=args.seed, stopping=stopping, latency_limit_ms=args.latency_limit_ms,
                        percentile=args.latency_percentile, backend=args.backend, inputs=inputs,
                        telemetry_hz=args.telemetry_hz or None, resume=args.resume, db_url=db_url(args),
                        notes=args.notes, trust_pickle=args.trust_pickle)


def _sweep(args: argparse.Namespace) -> int:
    request = sweep_request(args)
    with cancel_on_interrupt() as cancel:
        report = sweep_model(request, cancel=cancel, progress=None if args.json else progress_bar())
    print_out(json.dumps(report.to_dict(), indent=2) if args.json else sweep_text(report))
    if report.status == "cancelled":
        sys.stderr.write(f"{PROG}: sweep {report.sweep_id} stopped; `{PROG} sweep {args.model} --resume "
                         f"{report.sweep_id}` measures the rest\n")
        return 130
    if report.summaries and all(s.status == "failed" for s in report.summaries):
        sys.stderr.write(f"{PROG}: error: no point of sweep {report.sweep_id} could be measured: "
                         f"{report.summaries[0].error}\n")
        return EXIT_USAGE
    return 0
