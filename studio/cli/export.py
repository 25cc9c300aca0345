"""`export`, `verify-bundle` and `report`: deployment bundles and HTML reports."""

from __future__ import annotations

import argparse
import json

from engine.optimize.recipe import Recipe
from studio.cli.options import (
    add_input_options,
    add_trust_pickle_option,
    cancel_on_interrupt,
    db_url,
    input_request,
    print_out,
    progress_bar,
)
from studio.reports.run_report import write_run_report
from studio.usecases.bundles import (
    ExportRequest,
    export_deployment_bundle,
    new_signing_key,
    verify_deployment_bundle,
)


def add_export_commands(commands, common: argparse.ArgumentParser) -> None:
    export = commands.add_parser("export", parents=[common],
                                 help="write a self-contained deployment bundle (model, recipe, manifest, report, predict.py)")
    export.add_argument("model", nargs="?", help="model file or file.py:function (or give --run / --artifact)")
    export.add_argument("--run", type=int, metavar="ID", help="the model of a saved run, with its benchmark summary")
    export.add_argument("--artifact", type=int, metavar="ID", help="an optimized model saved by `optimize`")
    export.add_argument("--recipe", metavar="FILE.json", help="optimize with this recipe first, then package the result")
    export.add_argument("--format", choices=("onnx", "torchscript", "pt2"), default="onnx")
    export.add_argument("--zip", action="store_true", help="write a .zip instead of a folder")
    export.add_argument("--force", action="store_true", help="replace an existing bundle")
    export.add_argument("--sign-key", metavar="KEY", help="sign the bundle with this Ed25519 private key (PEM; "
                        "`keygen` makes one): verify-bundle --public-key KEY.pub then catches any later change")
    add_trust_pickle_option(export)
    export.add_argument("-o", "--output", required=True, metavar="DIR")
    add_input_options(export)
    export.add_argument("--json", action="store_true", help="print the manifest as JSON")
    export.set_defaults(handler=_export)

    verify = commands.add_parser("verify-bundle", parents=[common],
                                 help="check a bundle's hashes; with --run-predict, that predict.py reproduces the "
                                 "studio's outputs")
    verify.add_argument("bundle", metavar="DIR", help="a bundle folder or .zip")
    verify.add_argument("--public-key", metavar="KEY.pub", help="check the bundle's signature against this Ed25519 "
                        "public key first: an unsigned bundle, or one changed after signing, fails")
    verify.add_argument("--run-predict", action="store_true",
                        help="also run the bundle's predict.py (its code: only for bundles you trust) in a clean "
                        "process in a temporary folder, and compare its outputs with the studio's")
    verify.add_argument("--inputs", metavar="FILE.npz", help="with --run-predict: inputs to compare on (default: the "
                        "bundle's sample inputs)")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(handler=_verify)

    keygen = commands.add_parser("keygen", parents=[common], help="make an Ed25519 key pair to sign bundles with")
    keygen.add_argument("key", metavar="PATH", help="the private key's file (PATH.pub gets the public key); never "
                        "replaces an existing file")
    keygen.set_defaults(handler=_keygen)

    report = commands.add_parser("report", parents=[common], help="an HTML report of a run, or a comparison of runs")
    report.add_argument("--run", type=int, required=True, metavar="ID", help="the run (the baseline when comparing)")
    report.add_argument("--compare", type=int, nargs="+", default=[], metavar="ID", help="runs to compare with it")
    report.add_argument("-o", "--output", required=True, metavar="report.html")
    report.set_defaults(handler=_report)


def _export(args: argparse.Namespace) -> int:
    given = bool(args.shape or args.dim or args.batch or args.inputs)
    request = ExportRequest(output=args.output, model=args.model, run_id=args.run, artifact_id=args.artifact,
                            recipe=Recipe.load(args.recipe) if args.recipe else None, format=args.format, zip=args.zip,
                            force=args.force, inputs=input_request(args) if given else None, db_url=db_url(args),
                            trust_pickle=args.trust_pickle, sign_key=args.sign_key)
    with cancel_on_interrupt() as cancel:
        result = export_deployment_bundle(request, cancel=cancel, progress=None if args.json else progress_bar())
    if args.json:
        print_out(json.dumps(result.manifest, indent=2, default=str))
    else:
        print_out(f"bundle written to {result.path} ({result.size_bytes / 1e6:.2f} MB, {len(result.files)} files, "
                  f"{result.seconds:.2f} s); check it with: autoglm-studio verify-bundle {result.path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    with cancel_on_interrupt() as cancel:
        report = verify_deployment_bundle(args.bundle, args.inputs, run_predict=args.run_predict,
                                          public_key=args.public_key, cancel=cancel)
    print_out(json.dumps(report.to_dict(), indent=2, default=str) if args.json else report.text())
    return 0


def _keygen(args: argparse.Namespace) -> int:
    public = new_signing_key(args.key)
    print_out(f"private key {args.key} (keep it secret; readable by you only), public key {public}\n"
              f"sign with: export ... --sign-key {args.key}; check with: verify-bundle DIR --public-key {public}")
    return 0


def _report(args: argparse.Namespace) -> int:
    path = write_run_report(db_url(args), args.run, args.compare, args.output)
    print_out(f"report written to {path}")
    return 0
