"""`sweep`: a grid of configurations measured point by point, resumably: where a model runs best here."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from engine.backends import BACKEND_NAMES
from engine.errors import InputError
from engine.measure.adaptive_stopping import StoppingRule
from engine.model.inputs import InputRequest, parse_dim_options, parse_shape_options
from engine.sweep.analysis import grid_text
from profilers.sampler import DEFAULT_HZ
from studio.cli.options import (
    EXIT_USAGE,
    PROG,
    cancel_on_interrupt,
    db_url,
    print_out,
    progress_bar,
)
from studio.present import console
from studio.present.numbers import number
from studio.usecases.sweeps import (
    SweepReport,
    SweepRequest,
    parse_list,
    sweep_model,
    thread_count,
)

PERCENTILES = ("p50", "p90", "p95", "p99")
MARKS = {"chosen": "*", "efficient": "e", "frontier": "^"}


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
    sweep.add_argument("--latency-limit-ms", type=float, metavar="X", help="the chosen point keeps latency under X")
    sweep.add_argument("--latency-percentile", choices=PERCENTILES, help="the latency the limit and frontier use "
                                                                         "(default p99)")
    sweep.add_argument("--seed", type=int, help="seed of the point order and the synthetic inputs (default 0)")
    sweep.add_argument("--point-cap-s", type=float, metavar="S", help="time cap per point (default 10 s)")
    sweep.add_argument("--min-duration", type=float, metavar="S", help="minimum timed seconds per point (default 0.5)")
    sweep.add_argument("--min-iterations", type=int, metavar="N", help="minimum iterations per point (default 50)")
    sweep.add_argument("--warmup", type=int, metavar="N", help="uncounted warm-up iterations per point (default 10)")
    sweep.add_argument("--ci-half-width", type=float, metavar="R",
                       help="stop a point once its median's 95%% CI is within ±R (default 0.02; 0 measures the "
                            "minimums only)")
    sweep.add_argument("--backend", choices=BACKEND_NAMES,
                       help="runtime of the original model (default: the format's)")
    sweep.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS", help="an input's full shape")
    sweep.add_argument("--dim", action="append", default=[], metavar="NAME=N", help="a symbolic dim's size")
    sweep.add_argument("--inputs", metavar="FILE.npz", help="real inputs: an .npz whose keys are the input names")
    sweep.add_argument("--telemetry-hz", type=float, default=DEFAULT_HZ, metavar="N",
                       help=f"telemetry rate per point, for energy (default {DEFAULT_HZ:g}; 0 turns it off)")
    sweep.add_argument("--resume", type=int, metavar="ID", help="measure the points of sweep ID not done yet")
    sweep.add_argument("--notes", default="", help="free text kept with the sweep")
    sweep.add_argument("--trust-pickle", action="store_true", help="allow unpickling a torch.save file (runs its code)")
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
    inputs = InputRequest(shapes=parse_shape_options(args.shape), dims=parse_dim_options(args.dim),
                          npz=Path(args.inputs) if args.inputs else None)  # seeded with the sweep's seed
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


def sweep_text(report: SweepReport) -> str:
    spec, analysis = report.spec, report.analysis
    rule = spec.stopping
    stop = (f"median's {rule.confidence:.0%} CI within ±{rule.ci_half_width:.0%}" if rule.adaptive
            else "the minimums only")
    lines = [f"sweep {report.sweep_id} of {report.model.name}: {len(spec.grid.points())} points in a random order "
             f"(seed {spec.seed}); {len(report.summaries) - len(report.skipped)} measured now, "
             f"{len(report.skipped)} done earlier",
             f"each point: {rule.warmup} warm-up, then at least {rule.min_iterations} iterations and "
             f"{rule.min_duration_s:g} s, until the {stop}, at most {rule.max_duration_s:g} s"]
    for label, recipe in report.recipes.items():
        lines.append(f"recipe {label}: " + (recipe["unavailable"] or f"optimized to {recipe['optimized_model']}"
                                            if recipe["optimized_model"] or recipe["unavailable"]
                                            else "not needed: its points were measured earlier"))
    marks: dict[str, str] = {}
    for summary in analysis.frontier:
        marks[summary.key] = MARKS["frontier"]
    for choice, mark in ((analysis.most_efficient, MARKS["efficient"]), (analysis.fastest, MARKS["chosen"])):
        if choice.summary is not None:
            marks[choice.summary.key] = mark + marks.get(choice.summary.key, "")
    grid = spec.grid
    for table in sorted(analysis.tables, key=lambda t: (grid.providers.index(t.provider),
                                                        grid.recipes.index(t.recipe))):
        lines += ["", grid_text(table, percentile=spec.percentile, marks=marks)]
    lines += [f"marks: {MARKS['chosen']} fastest under the limit, {MARKS['efficient']} most items per joule, "
              f"{MARKS['frontier']} on the frontier", "", _points_table(report)]
    frontier = " -> ".join(f"{s.point.label()} ({s.latency_ms(spec.percentile):.3f} ms, {s.throughput_per_s:.1f}/s)"
                           for s in analysis.frontier)
    limit = f"under {spec.latency_limit_ms:g} ms {spec.percentile}" if spec.latency_limit_ms else "(no latency limit)"
    lines += ["", f"frontier ({spec.percentile} vs items/s): {frontier or 'no point finished'}",
              f"fastest {limit}: {_choice_text(report, analysis.fastest)}",
              f"most energy-efficient: {_choice_text(report, analysis.most_efficient)}"]
    failures: dict[str, list[str]] = {}
    for summary in analysis.failed:
        failures.setdefault(summary.error or "unknown error", []).append(summary.point.label())
    for error, labels in failures.items():
        lines.append(f"failed ({len(labels)} point{'s' if len(labels) > 1 else ''}: {'; '.join(labels)}): {error}")
    return "\n".join(lines)


def _choice_text(report: SweepReport, choice) -> str:
    if choice.summary is None:
        return choice.reason
    return f"{choice.summary.point.label()} (run {report.run_ids.get(choice.summary.key)}): {choice.reason}"


def _points_table(report: SweepReport) -> str:
    rows = []
    for s in report.summaries:
        p50, p99 = s.latency_ms("p50"), s.latency_ms("p99")
        spread = "-"
        if s.median_ci_ms and p50:
            spread = f"±{max(p50 - s.median_ci_ms[0], s.median_ci_ms[1] - p50) / p50:.1%}"
        rows.append((s.point.label(), s.status, s.samples, number(p50, ".3f", "-"), number(p99, ".3f", "-"),
                     number(s.throughput_per_s, ".1f", "-"), spread,
                     "converged" if s.converged else ("time cap" if s.status == "completed" else "-"),
                     number(s.items_per_joule, ".1f", "-"), report.run_ids.get(s.key, "-")))
    return console.table(("point", "status", "samples", "p50 ms", "p99 ms", "items/s", "median CI", "stopped by",
                          "items/J", "run"), rows)


def _number(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)

