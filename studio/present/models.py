"""This machine's devices and a model's card, as `devices`, `inspect` and the demo print them."""

from __future__ import annotations

from collections.abc import Sequence

from engine.device.discovery import Device
from engine.model.handle import ModelHandle
from engine.model.inputs import choose_dims
from studio.present.dims import dim_choice_lines
from studio.present.numbers import byte_size
from studio.present.tables import table

TOP_OPS = 12
FORMULA_WIDTH = 80


def devices_text(devices: Sequence[Device]) -> str:
    rows = []
    for d in devices:
        runs_on = ", ".join(f"{r.backend}:{r.provider}" for r in d.runners) or "-"
        rows.append((d.id, d.kind, d.name, "yes" if d.available else "no", runs_on if d.available else d.reason))
    text = table(("id", "kind", "name", "usable", "runs with / why not"), rows)
    cpu = next((d for d in devices if d.kind == "cpu"), None)
    if cpu is not None:
        isa = " ".join(cpu.details.get("isa_flags", [])) or "none detected"
        text += f"\n\nCPU: {cpu.details.get('logical_cores')} logical cores; ISA: {isa}"
    return text


def model_text(handle: ModelHandle) -> str:
    lines = [
        f"model       {handle.path}",
        f"format      {handle.format.value}",
        f"size        {byte_size(handle.size_bytes)}"
        + (f" in {len(handle.files)} files" if len(handle.files) > 1 else ""),
        f"sha256      {handle.sha256}",
        f"parameters  {handle.parameter_count:,}",
        "",
        table(("input", "dtype", "shape"), [(s.name, s.dtype, s.shape_text(brief=True)) for s in handle.inputs]),
        "",
        table(("output", "dtype", "shape"), [(s.name, s.dtype, s.shape_text(brief=True)) for s in handle.outputs]),
    ]
    lines += [f"{token:<11} {_shortened(formula)}" for spec in handle.outputs + handle.inputs
              for token, formula in spec.formulas().items()]
    choices = choose_dims([s for s in handle.inputs if s.shape is not None], dim_bounds=handle.dim_bounds)
    if choices:
        lines += ["", "dims a run uses unless told otherwise:", *dim_choice_lines(choices)]
    ops = sorted(handle.op_histogram.items(), key=lambda kv: (-kv[1], kv[0]))
    if ops:
        shown = ", ".join(f"{name} {count}" for name, count in ops[:TOP_OPS])
        more = f" (+{len(ops) - TOP_OPS} more op types)" if len(ops) > TOP_OPS else ""
        lines += ["", f"ops ({sum(handle.op_histogram.values())} nodes): {shown}{more}"]
    lines += [f"note: {note}" for note in handle.notes]
    return "\n".join(lines)


def _shortened(formula: str) -> str:
    """A formula cut to fit a line; `inspect --json` gives it whole."""
    return formula if len(formula) <= FORMULA_WIDTH else formula[:FORMULA_WIDTH - 1] + "… (whole in --json)"


def model_line(handle: ModelHandle) -> str:
    """The one line that names a measured model in every result."""
    return f"model       {handle.name} ({handle.format.value}, {handle.sha256[:12]})"
