"""Plain-text rendering of devices, model cards and benchmark results for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from engine.devices import Device
from engine.models import ModelHandle
from studio.session import BenchReport

TOP_OPS = 12


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def devices_text(devices: Sequence[Device]) -> str:
    rows = []
    for d in devices:
        runs_on = ", ".join(f"{r.backend}:{r.provider}" for r in d.runners) or "-"
        rows.append((d.id, d.kind, d.name, "yes" if d.available else "no", runs_on if d.available else d.reason))
    text = table(("id", "kind", "name", "usable", "runs with / why not"), rows)
    cpu = next((d for d in devices if d.kind == "cpu"), None)
    if cpu is not None:
        text += f"\n\nCPU: {cpu.details.get('logical_cores')} logical cores; ISA: {' '.join(cpu.details.get('isa_flags', [])) or 'none detected'}"
    return text


def model_text(handle: ModelHandle) -> str:
    lines = [
        f"model       {handle.path}",
        f"format      {handle.format.value}",
        f"size        {_bytes(handle.size_bytes)}" + (f" in {len(handle.files)} files" if len(handle.files) > 1 else ""),
        f"sha256      {handle.sha256}",
        f"parameters  {handle.parameter_count:,}",
        "",
        table(("input", "dtype", "shape"), [(s.name, s.dtype, s.shape_text()) for s in handle.inputs]),
        "",
        table(("output", "dtype", "shape"), [(s.name, s.dtype, s.shape_text()) for s in handle.outputs]),
    ]
    ops = sorted(handle.op_histogram.items(), key=lambda kv: (-kv[1], kv[0]))
    if ops:
        shown = ", ".join(f"{name} {count}" for name, count in ops[:TOP_OPS])
        more = f" (+{len(ops) - TOP_OPS} more op types)" if len(ops) > TOP_OPS else ""
        lines += ["", f"ops ({sum(handle.op_histogram.values())} nodes): {shown}{more}"]
    lines += [f"note: {note}" for note in handle.notes]
    return "\n".join(lines)


def bench_text(report: BenchReport) -> str:
    data = report.to_dict()
    latency = data["latency_ms"]
    cold = data["cold_start_ms"]
    unreliable = set(data["unreliable_percentiles"])
    inputs = data["inputs"]
    lines = [
        f"model       {report.model.name} ({report.model.format.value}, {report.model.sha256[:12]})",
        f"device      {report.device.id} {report.device.name} via {report.runner.backend}:{report.runner.provider}",
        f"inputs      {inputs['source']}: "
        + ", ".join(f"{name} {'×'.join(map(str, shape))} {inputs['dtypes'][name]}" for name, shape in inputs["shapes"].items()),
    ]
    if inputs["defaults_used"]:
        lines.append(f"defaults    {', '.join(inputs['defaults_used'])} (override with --dim NAME=N or --shape NAME=DIMS)")
    lines += [
        f"status      {data['status']}",
        "",
        f"cold start  load {_ms(cold['load'])}  session {_ms(cold['session'])}  first inference {_ms(cold['first_inference'])}"
        f"  total {_ms(cold['total'])}",
        "",
        table(
            ("samples", "mean", "std", "min", "p50", "p90", "p95", "p99", "max"),
            [(latency["count"], *(_ms(latency[k]) + ("*" if k in unreliable else "") for k in
                                   ("mean", "std", "min", "p50", "p90", "p95", "p99", "max")))],
        ),
        "",
        f"throughput  {_rate(data['throughput_per_s'])} items/s (batch {data['settings']['batch']})",
    ]
    if unreliable:
        lines.append(f"* {', '.join(sorted(unreliable))} from too few samples to mean much (p99 needs ≥ 100); run longer")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} ms" if value < 100 else f"{value:.1f} ms"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"


def _bytes(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value, unit = float(size), "B"
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.2f} {unit}"
