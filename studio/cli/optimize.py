"""`optimize`: prune, factorize and quantize a model, graded on fidelity against the original."""

from __future__ import annotations

import argparse
import json
import sys

from engine.optimize.recipe import (
    CALIBRATION_METHODS,
    GRAPH_LEVELS,
    PRUNING_IMPORTANCES,
    Recipe,
)
from studio import usecases
from studio.cli.options import (
    EXIT_USAGE,
    PROG,
    add_input_options,
    cancel_on_interrupt,
    db_url,
    input_request,
    print_out,
    progress_bar,
)
from studio.present import console

QUANTIZE_CHOICES = {"dynamic": "dynamic_int8", "static": "static_int8", "fp16": "fp16", "auto": "auto"}


def add_optimize_command(commands, common: argparse.ArgumentParser) -> None:
    optimize = commands.add_parser("optimize", parents=[common], help="prune, factorize and quantize a model, graded on fidelity")
    optimize.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    optimize.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="where the optimized model goes")
    add_input_options(optimize)
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
    request = usecases.OptimizeRequest(
        model=args.model, recipe=recipe_from_args(args), output=args.output, inputs=input_request(args),
        device=args.device, threads=args.threads, accuracy_data=args.accuracy_data,
        compare_seconds=args.compare_seconds, save=not args.no_save, db_url=db_url(args), trust_pickle=args.trust_pickle,
    )
    if not args.json:
        _, _, plan = usecases.plan_optimization_for(request)
        print_out(console.plan_text(plan) + "\n")
    with cancel_on_interrupt() as cancel:
        report = usecases.optimize_model(request, cancel=cancel, progress=None if args.json else progress_bar())
    print_out(json.dumps(report.to_dict(), indent=2, default=str) if args.json else console.optimize_text(report))
    if report.result.status != "completed":
        violations = "; ".join(report.result.fidelity.budget.violations) if report.result.fidelity.budget else ""
        sys.stderr.write(f"{PROG}: error: the optimized model misses the accuracy budget ({violations}); nothing written\n")
        return EXIT_USAGE
    return 0

