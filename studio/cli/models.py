"""`devices` and `inspect`: what this machine can run on, and a model's card."""

from __future__ import annotations

import argparse
import json

from studio import usecases
from studio.cli.options import add_trust_pickle_option, print_out
from studio.present.models import devices_text, model_text


def add_model_commands(commands, common: argparse.ArgumentParser) -> None:
    devices = commands.add_parser("devices", parents=[common], help="list CPU, GPU and NPU devices and what runs them")
    devices.add_argument("--json", action="store_true", help="print JSON")
    devices.set_defaults(handler=_devices)

    inspect = commands.add_parser("inspect", parents=[common], help="show a model's card: format, IO, parameters, ops")
    inspect.add_argument("model", help="model file, or a factory given as path/to/file.py:function")
    add_trust_pickle_option(inspect)
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(handler=_inspect)


def _devices(args: argparse.Namespace) -> int:
    devices = usecases.list_devices()
    print_out(json.dumps([d.to_dict() for d in devices], indent=2) if args.json else devices_text(devices))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    handle = usecases.open_model(args.model, trust_pickle=args.trust_pickle)
    print_out(json.dumps(handle.to_dict(), indent=2) if args.json else model_text(handle))
    return 0
