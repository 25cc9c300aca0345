"""`optimize`: prune, factorize and quantize a model, graded on fidelity against the original.

Every recipe knob is a flag, made from the knob's own declaration (engine.optimize.params): --<section>-<name>,
or the spelling the knob declares. Given flags are laid over the recipe file (or the defaults), and the recipe
validates the whole, so a bad value is one line naming the field and what it allows.

A result below its accuracy budget, or one the fidelity inputs cannot judge, is rejected and exits with
EXIT_REJECTED (3), never 0: nothing is written to -o and nothing is saved as an artifact.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.optimize.recipe import RECIPE_SECTIONS, Knob, Recipe, SectionForm
from studio import usecases
from studio.cli.options import (
    add_input_options,
    cancel_on_interrupt,
    db_url,
    finite,
    input_request,
    print_out,
    PROG,
    progress_bar,
)
from studio.present.optimization import optimize_text, plan_text, rejection_text

EXIT_REJECTED = 3  # the optimized model is below its accuracy budget, or could not be judged: not accepted
EPILOG = (
    "accuracy budget: every result is graded against one; without --budget-* options the default applies: "
    "cosine >= 0.99 on every output and top-1 disagreement <= 0.01 on every classifier output. Outputs that are "
    "~0, constant or NaN on the fidelity inputs cannot be judged (give real data with --calibration; part of it "
    "is held out for fidelity). Exit status: 0 accepted and written; 3 rejected (below budget or not judged): "
    "nothing is written to OUT.onnx and nothing is saved, the rejected model's cache path is printed for "
    "inspection only; 2 a usage or input error."
)


def add_optimize_command(commands, common: argparse.ArgumentParser) -> None:
    optimize = commands.add_parser("optimize", parents=[common], epilog=EPILOG,
                                   help="prune, factorize and quantize a model, graded on fidelity")
    optimize.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    optimize.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="where the optimized model goes")
    add_input_options(optimize, sample_options=False)  # --inputs takes the calibration options' settings
    optimize.add_argument("--device", default="cpu", help="where candidates are timed (default cpu)")
    optimize.add_argument("--threads", type=int, metavar="N", help="intra-op threads for timing (default 1)")
    optimize.add_argument("--recipe", metavar="FILE.json", help="a saved recipe; the recipe options override it")
    optimize.add_argument("--accuracy-data", metavar="FILE.npz", help="inputs plus 'labels', for task accuracy")
    optimize.add_argument("--compare-seconds", type=finite, default=2.0, metavar="S",
                          help="seconds per model and round for the before/after latency (0 skips it)")
    optimize.add_argument("--no-save", action="store_true", help="do not record the optimized model in the database")
    optimize.add_argument("--trust-pickle", action="store_true", help="allow unpickling a torch.save file (runs its code)")
    optimize.add_argument("--json", action="store_true", help="print one JSON object")
    for section in RECIPE_SECTIONS:
        group = optimize.add_argument_group(f"recipe: {section.title.lower()}")
        for knob in section.all_knobs:
            group.add_argument(knob_flag(knob), dest=_dest(knob), default=None, **_argument(knob, section))
    optimize.set_defaults(handler=_optimize)


def knob_flag(knob: Knob) -> str:
    return knob.param.flag or "--" + "-".join(filter(None, (knob.section, knob.name))).replace("_", "-")


def _dest(knob: Knob) -> str:
    return f"recipe__{knob.section}__{knob.name}"


def _argument(knob: Knob, section: SectionForm) -> dict:
    """How argparse reads the knob; the recipe, not argparse, checks ranges, so both spell errors the same way."""
    param = knob.param
    notes = [param.bounds_text(knob.name)] if param.low is not None or param.high is not None else []
    if param.selects:
        notes.append(f"also sets {section.selector.name} {param.selects}")
    if knob is section.selector and section.aliases:
        notes.append(", ".join(f"{short} = {value}" for short, value in section.aliases.items()))
    if knob.default not in (None, [], ()) and knob is not section.selector:
        notes.append(f"default {json.dumps(knob.default)}")
    text = param.help + (f" ({'; '.join(notes)})" if notes else "")
    if param.kind == "choice" and knob is section.selector and section.aliases:
        return {"help": text, "choices": param.choices, "type": lambda value: section.aliases.get(value, value)}
    if param.kind == "choice":
        return {"help": text, "choices": param.choices}
    if param.kind == "boolean":
        return {"help": text, "action": argparse.BooleanOptionalAction}
    if param.kind in ("number", "integer"):
        return {"help": text, "type": float if param.kind == "number" else int,
                "metavar": "N" if param.kind == "integer" else "X"}
    if param.kind == "names":
        return {"help": text, "type": _name_list, "metavar": f"{param.item}[,{param.item}...]"}
    return {"help": text, "metavar": "PATH"}


def _name_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The recipe file (or defaults) with the command-line options laid over it, validated as a whole."""
    data = (Recipe.load(args.recipe) if args.recipe else Recipe()).to_dict()
    for section in RECIPE_SECTIONS:
        values = data[section.name] if section.name else data
        for knob in section.all_knobs:
            value = getattr(args, _dest(knob))
            if value is None:
                continue
            values[knob.name] = value
            if knob.param.selects:
                values[section.selector.name] = knob.param.selects
    return Recipe.from_dict(data)


def _optimize(args: argparse.Namespace) -> int:
    recipe = recipe_from_args(args)
    request = usecases.OptimizeRequest(
        model=args.model, recipe=recipe, output=args.output,
        inputs=input_request(args, recipe.calibration.sample_options()),
        device=args.device, threads=args.threads, accuracy_data=args.accuracy_data,
        compare_seconds=args.compare_seconds, save=not args.no_save, db_url=db_url(args), trust_pickle=args.trust_pickle,
    )
    if not args.json:
        _, _, plan = usecases.plan_optimization_for(request)
        print_out(plan_text(plan) + "\n")
    with cancel_on_interrupt() as cancel:
        report = usecases.optimize_model(request, cancel=cancel, progress=None if args.json else progress_bar())
    print_out(json.dumps(report.to_dict(), indent=2, default=str) if args.json else optimize_text(report))
    if not report.result.accepted:
        sys.stderr.write(f"{PROG}: {rejection_text(report)}\n")
        return EXIT_REJECTED
    return 0

