"""Plain-text rendering of devices, model cards and benchmark results for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from engine.device.discovery import Device
from engine.model.handle import ModelHandle
from studio.usecases import BenchReport

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
    if data["telemetry"] is not None:
        lines += ["", telemetry_summary_text(data["telemetry"], data["telemetry_hz"])]
    return "\n".join(lines)


def telemetry_summary_text(summary: dict, hz: float) -> str:
    throttle = summary["throttle"]
    checks = "; ".join(f"{device}: {', '.join(names)}" for device, names in throttle["checks"].items()) or "none possible"
    throttled = (f"YES, {throttle['count']} events, {throttle['duration_s']:.2f} s, "
                 f"{throttle['share_of_latency_samples']:.0%} of latency samples" if summary["throttled"] else "no")
    lines = [f"telemetry   {hz:g} Hz, {'live' if summary['live'] else 'REPLAYED, not live'}; "
             f"throttled: {throttled} (checked {checks})"]
    for device, figures in summary["devices"].items():
        parts = []
        if figures["energy_j"] is not None:
            parts.append(f"energy {figures['energy_j']:.3f} J ({figures['energy_method']}"
                         + (", idle subtracted" if figures["idle_subtracted"] else "") + ")")
            parts.append(f"{figures['energy_per_inference_j'] * 1e3:.3f} mJ/inference")
        if figures["average_power_w"] is not None:
            parts.append(f"power avg {figures['average_power_w']:.1f} W, peak {figures['peak_power_w']:.1f} W")
        if figures["items_per_watt"] is not None:
            parts.append(f"{figures['items_per_watt']:.2f} items/s/W")
        if figures["peak_temperature_c"] is not None:
            parts.append(f"temperature peak {figures['peak_temperature_c']:.0f} °C")
        lines.append(f"  {device:<10}{'; '.join(parts) or 'nothing measured in the timed loop'}")
    for item in summary["unavailable"]:
        what = "all metrics" if item["name"] == "*" else item["name"]
        lines.append(f"  {item['device']:<10}{what} unavailable: {item['reason']}")
    return "\n".join(lines)


def monitor_text(snapshot, elapsed_s: float) -> str:
    """The latest value of every metric, then what this machine cannot measure and why."""
    rows = []
    for key, spec in sorted(snapshot.specs.items()):
        series = snapshot.series.get(key)
        latest = f"{series.values[-1]:,.2f}" if series is not None and len(series) else "waiting"
        rows.append((spec.device, spec.name, latest, spec.unit, spec.kind.value, spec.note))
    header = f"telemetry at {elapsed_s:.1f} s ({'live' if snapshot.live else 'REPLAYED, not live'})"
    text = header + "\n" + table(("device", "metric", "latest", "unit", "kind", "note"), rows)
    missing = [f"  {u.device}: {'all metrics' if u.name == '*' else u.name} unavailable: {u.reason}" for u in snapshot.unavailable]
    return text + ("\n" + "\n".join(missing) if missing else "")


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


def runs_text(page, offset: int) -> str:
    if not page.runs:
        return "no saved runs match" if page.total == 0 else f"no runs on this page ({page.total} match; lower --offset)"
    rows = []
    for run in page.runs:
        latency = (run.summary or {}).get("latency_ms", {})
        model = run.model.path.rsplit("/", 1)[-1] if run.model else "?"
        rows.append((run.id, run.started_at.strftime("%Y-%m-%d %H:%M"), run.status, model, run.device,
                     f"{run.backend}:{run.provider or '-'}", _ms(latency.get("p50")), _ms(latency.get("p99")),
                     ",".join(run.tags)))
    shown = f"runs {offset + 1}-{offset + len(page.runs)} of {page.total}"
    return table(("id", "started (UTC)", "status", "model", "device", "runs with", "p50", "p99", "tags"), rows) + f"\n{shown}"


def run_text(data) -> str:
    run = data.record
    summary = run.summary or {}
    lines = [
        f"run         {run.id} ({run.status}{': ' + run.error if run.error else ''})",
        f"model       {run.model.path if run.model else '?'} ({run.model.sha256[:12] if run.model else ''})",
        f"device      {run.device} via {run.backend}:{run.provider or '-'} {run.provider_options or ''}".rstrip(),
        f"host        {run.host}",
        f"started     {run.started_at.isoformat(timespec='seconds')}"
        + (f", ended {run.ended_at.isoformat(timespec='seconds')}" if run.ended_at else ""),
        f"samples     {data.latency.latencies_ns.size:,} latency samples stored",
    ]
    if run.tags or run.notes:
        lines.append(f"tags        {', '.join(run.tags) or '-'}; notes: {run.notes or '-'}")
    latency = summary.get("latency_ms")
    if latency:
        lines += ["", table(("mean", "std", "min", "p50", "p90", "p95", "p99", "max"),
                            [tuple(_ms(latency[k]) for k in ("mean", "std", "min", "p50", "p90", "p95", "p99", "max"))]),
                  "", f"throughput  {_rate(summary.get('throughput_per_s'))} items/s"]
    for figure in run.energy:
        value = (f"{figure.joules_per_inference * 1e3:.3f} mJ/inference ({figure.source})"
                 if figure.joules_per_inference is not None else f"unavailable: {figure.unavailable_reason}")
        lines.append(f"energy      {figure.device}: {value}")
    return "\n".join(lines)


def comparison_text(comparison) -> str:
    labels = [f"run {run.run_id}" for run in comparison.runs]
    rows = [(name, *(_statistic(name, value) for value in values)) for name, values in comparison.statistics_table()]
    lines = [table(("statistic", *labels), rows), ""]
    for pair in comparison.pairs:
        lines.append(pair.explanation)
    for row in comparison.energy:
        values = [f"{v * 1e3:.3f} mJ" if v is not None else "n/a" for v in row.joules_per_inference]
        lines.append(f"energy per inference on {row.device} ({row.source or 'unavailable'}): " + ", ".join(values))
    lines += [f"warning: {warning}" for warning in comparison.warnings]
    return "\n".join(lines)


def _statistic(name: str, value) -> str:
    if value is None:
        return "n/a"
    if name == "count":
        return f"{value:,}"
    if name == "throughput_per_s":
        return _rate(value)
    return _ms(value)


def plan_text(plan) -> str:
    """What each step will do, and what it will not, before anything runs."""
    lines = ["plan:"]
    for index, step in enumerate(plan.steps, start=1):
        lines.append(f"  {index}. {step.title}")
        lines += [f"       - {expectation}" for expectation in step.expectations]
    lines += [f"  note: {note}" for note in plan.notes]
    lines += [f"  BLOCKED: {reason}" for reason in plan.blocked]
    return "\n".join(lines)


def optimize_text(report) -> str:
    data = report.to_dict()
    fidelity = data["fidelity"]
    lines = ["steps run:"]
    for step in data["steps"]:
        origin = "from cache" if step["cached"] else f"{step['seconds']:.2f} s"
        lines.append(f"  {step['title']} ({origin})")
        lines += [f"    note: {note}" for note in step["notes"]]
    lines += ["", table(("output", "cosine", "max abs err", "rel L2", "SQNR dB", "top-1 agree"), [
        (o["name"], f"{o['cosine']:.5f}", f"{o['max_abs_error']:.3g}", f"{o['relative_l2']:.4f}",
         "identical" if o["identical"] else f"{o['sqnr_db']:.1f}",
         "-" if o["top1_agreement"] is None else f"{o['top1_agreement']:.3f}") for o in fidelity["outputs"]])]
    lines.append(f"fidelity on {fidelity['samples']} seeded inputs" + (
        f"; budget {fidelity['budget']['budget']}: {'met' if fidelity['budget']['met'] else 'MISSED'}"
        if fidelity["budget"] else ""))
    if fidelity["task_accuracy"]:
        lines.append(f"task accuracy: {fidelity['task_accuracy']}")
    lines += [f"note: {note}" for note in fidelity["notes"]]
    original, optimized = fidelity["original"], fidelity["optimized"]
    if original and optimized:
        lines += ["", table(("", "size", "parameters", "MACs"), [
            (name, _bytes(summary["size_bytes"]), f"{summary['parameters']:,}",
             f"{summary['macs']['total']:,}" if summary.get("macs") and summary["macs"].get("total") else "unknown")
            for name, summary in (("original", original), ("optimized", optimized))])]
    if data["auto"]:
        lines += ["", _auto_text(data["auto"])]
    timing = data["before_after"]
    if timing:
        lines += ["", f"latency, median, {timing['threads']} thread(s), measured side by side: FP32 "
                      f"{timing['baseline']['median_ms']:.4f} ms -> optimized {timing['optimized']['median_ms']:.4f} ms "
                      f"= {timing['speedup']:.2f}x"]
    output = data["output"]
    if output["path"]:
        lines.append(f"written {output['path']} ({_bytes(output['size_bytes'])})"
                     + (f"; saved as artifact {data['artifact_id']}" if data["artifact_id"] else ""))
    return "\n".join(lines)


def _auto_text(auto: dict) -> str:
    rows = [(c["name"], "yes" if c["meets_budget"] else "no", len(c["nodes_in_fp32"]),
             "-" if c["cosine"] is None else f"{c['cosine']:.5f}",
             "-" if c["latency_ms"] is None else f"{c['latency_ms']:.4f}",
             "-" if c["speedup_vs_fp32"] is None else f"{c['speedup_vs_fp32']:.2f}x") for c in auto["candidates"]]
    lines = [f"auto quantization, budget {auto['budget']}:",
             table(("candidate", "meets", "FP32 nodes", "cosine", "median ms", "vs FP32"), rows),
             f"chose {auto['choice']}: {auto['reason']}"]
    for family, ranking in auto["sensitivity"].items():
        worst = ", ".join(f"{entry['node']} ({entry['op_type']})" for entry in ranking[:5])
        lines.append(f"most sensitive nodes for {family}: {worst}")
    return "\n".join(lines)


def generation_text(report) -> str:
    data = report.to_dict()
    model = data["model"]
    lines = [f"model       {model['model']['path']} ({model['model']['model_type']}, {model['parameter_count']:,} "
             f"parameters, {model['dtype']} on {model['device']})",
             f"mode        {data['mode']}; status {data['status']}"]
    if data["mode"] == "prefix_reuse":
        lines += ["", table(("TTFT", "p50", "p99", "mean"), [
            ("without reuse", *(_ms(data["ttft_without_reuse_ms"][k]) for k in ("p50", "p99", "mean"))),
            ("with reuse", *(_ms(data["ttft_with_reuse_ms"][k]) for k in ("p50", "p99", "mean")))]),
            f"TTFT speedup {data['ttft_speedup']:.2f}x; shared prefix prefilled once in {_ms(data['prefix_prefill_ms'])}; "
            f"outputs identical: {all(data['outputs_identical'])}"]
    else:
        summary = data["summary"] if data["mode"] == "generation" else data
        lines += ["", table(("", "p50", "p90", "p99", "mean"), [
            ("TTFT", *(_ms(summary["ttft_ms"][k]) for k in ("p50", "p90", "p99", "mean"))),
            ("TPOT", *(_ms(summary["tpot_ms"][k]) for k in ("p50", "p90", "p99", "mean")))])]
        if data["mode"] == "generation":
            lines.append(f"tokens/s    prefill {_rate(summary['prefill_tokens_per_s'])}, decode "
                         f"{_rate(summary['decode_tokens_per_s'])}, output {_rate(summary['output_tokens_per_s'])}")
        else:
            lines.append(f"serving     {_rate(data['throughput_tokens_per_s'])} tokens/s over {data['requests']} "
                         f"requests; queue p99 {_ms(data['queue_ms']['p99'])}; mean batch {data['mean_batch']:.2f}")
    quantized = data.get("weight_quantization")
    if quantized:
        lines.append(f"weights     {quantized['scheme']} on {quantized['linear_layers_quantized']} Linear layers: "
                     f"{_bytes(quantized['weight_bytes_before'])} -> {_bytes(quantized['weight_bytes_after'])}; "
                     f"perplexity {quantized['perplexity_before']['perplexity']:.3f} -> "
                     f"{quantized['perplexity_after']['perplexity']:.3f}")
    memory = data["memory"]
    if memory.get("peak_rss_bytes"):
        lines.append(f"memory      peak RSS {_bytes(memory['peak_rss_bytes'])}")
    if data["telemetry"] is not None:
        lines += ["", telemetry_summary_text(data["telemetry"], data["telemetry_hz"])]
        for device, figures in data["telemetry"]["devices"].items():
            if figures["energy_j"] is not None and data["generated_tokens"]:
                lines.append(f"  {device:<10}{figures['energy_j'] / data['generated_tokens'] * 1e3:.3f} mJ per generated token")
    if data["run_id"]:
        lines.append(f"saved as run {data['run_id']}")
    return "\n".join(lines)


def scenario_text(report) -> str:
    data = report.to_dict()
    lines = [f"model       {report.model.name} ({report.model.format.value}, {report.model.sha256[:12]})",
             f"device      {report.device.id} {report.device.name} via {report.runner.backend}:{report.runner.provider}"]
    if "max_rate" in data:
        search = data["max_rate"]
        lines += ["", f"server scenario, p99 bound {search['latency_bound_ms']:g} ms; capacity (1 / median service time) "
                      f"{search['capacity_qps']:,.1f} queries/s",
                  table(("rate q/s", "p99 ms", "queries", "held", "why not"), [
                      (f"{t['rate_qps']:,.1f}", _ms(t["p99_ms"]).replace(" ms", ""), t["queries"],
                       "yes" if t["held"] else "no", "; ".join(t["reasons"])) for t in search["trials"]])]
        best = search["max_rate_qps"]
        lines.append(f"MAX RATE with p99 ≤ {search['latency_bound_ms']:g} ms: "
                     + (f"{best:,.1f} queries/s" if best else "none of the rates tried held the bound"))
        lines.append(f"note: {search['note']}")
    else:
        scenario = data["scenario"]
        latency = scenario["latency_ms"]
        lines += ["", f"scenario    {scenario['scenario']}: {scenario['result']}"
                      + (f" ({'; '.join(scenario['reasons'])})" if scenario["reasons"] else ""),
                  "headline    " + ", ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in scenario["headline"].items()),
                  "", table(("queries", "mean", "p50", "p90", "p99", "max"), [
                      (scenario["queries"], *(_ms(latency[k]) for k in ("mean", "p50", "p90", "p99", "max")))]),
                  f"throughput  {_rate(scenario['throughput_per_s'])} items/s; service p50 "
                  f"{_ms(scenario['service_ms']['p50'])}; queueing mean {_ms(scenario['queueing_ms']['mean'])}"]
    if data["telemetry"] is not None:
        lines += ["", telemetry_summary_text(data["telemetry"], data["telemetry_hz"])]
    if data["run_id"]:
        lines.append(f"saved as run {data['run_id']}")
    return "\n".join(lines)
