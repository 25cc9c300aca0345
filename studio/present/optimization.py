"""An optimization for people: the plan before anything runs, then the steps, fidelity, sizes and the measured
before/after latency. Reads the report's JSON document, whose shape the optimization use case owns."""

from __future__ import annotations

from engine.optimize.plan import OptimizationPlan
from studio.present.numbers import byte_size
from studio.present.tables import table
from studio.usecases.optimization import OptimizeReport


def plan_text(plan: OptimizationPlan) -> str:
    """What each step will do, and what it will not, before anything runs."""
    lines = ["plan:"]
    for index, step in enumerate(plan.steps, start=1):
        lines.append(f"  {index}. {step.title}")
        lines += [f"       - {expectation}" for expectation in step.expectations]
    lines += [f"  note: {note}" for note in plan.notes]
    lines += [f"  BLOCKED: {reason}" for reason in plan.blocked]
    return "\n".join(lines)


def optimize_text(report: OptimizeReport) -> str:
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
            (name, byte_size(summary["size_bytes"]), f"{summary['parameters']:,}",
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
        lines.append(f"written {output['path']} ({byte_size(output['size_bytes'])})"
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
