"""`profile` and `profiles compare`: where a model's time goes, layer by layer, and two profiles side by side."""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import InputError
from engine.profiling.report import comparison_text
from studio.cli.bench import add_bench_options, bench_request
from studio.cli.options import (
    EXIT_USAGE,
    PROG,
    OneLineErrorParser,
    cancel_on_interrupt,
    db_url,
    print_out,
    progress_bar,
)
from studio.present.profiles import profile_report_text
from studio.usecases.profiles import compare_run_profiles, profile_model


def add_profile_commands(commands, common: argparse.ArgumentParser) -> None:
    profile = commands.add_parser("profile", parents=[common],
                                  help="time a model, then profile it layer by layer: per node, op type, placement")
    profile.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    add_bench_options(profile)
    profile.add_argument("--profile-iterations", type=int, default=20, metavar="N",
                         help="profiled inferences after the warm-up (default 20)")
    profile.add_argument("--top", type=int, default=15, metavar="N", help="slowest nodes listed (default 15)")
    profile.set_defaults(handler=_profile)

    profiles = commands.add_parser("profiles", parents=[common], help="compare the layer profiles of two saved runs")
    actions = profiles.add_subparsers(dest="profiles_command", metavar="ACTION", parser_class=OneLineErrorParser,
                                      required=True)
    compare = actions.add_parser("compare", parents=[common],
                                 help="per op type and layer: measured speedup next to the MAC-predicted one")
    compare.add_argument("run_a", type=int, metavar="RUN_A", help="the baseline run (e.g. FP32)")
    compare.add_argument("run_b", type=int, metavar="RUN_B", help="the candidate run (e.g. INT8)")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.set_defaults(handler=_profiles_compare)


def _profile(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise InputError(f"--top must be at least 1, got {args.top}")
    request = bench_request(args)
    with cancel_on_interrupt() as cancel:
        report = profile_model(request, cancel=cancel, progress=None if args.json else progress_bar(),
                               iterations=args.profile_iterations)
    print_out(json.dumps(report.to_dict(), indent=2) if args.json else profile_report_text(report, args.top))
    if report.profile is not None and report.profile.placement.fallback:
        sys.stderr.write(f"{PROG}: warning: {report.profile.placement.message()}\n")
    if report.bench.save_error:
        sys.stderr.write(f"{PROG}: error: the run was measured but not saved, nor its profile: "
                         f"{report.bench.save_error}\n")
        return EXIT_USAGE
    return 130 if report.profile is None else 0


def _profiles_compare(args: argparse.Namespace) -> int:
    comparison = compare_run_profiles(db_url(args), args.run_a, args.run_b)
    print_out(json.dumps(comparison.to_dict(), indent=2) if args.json else comparison_text(comparison))
    return 0
