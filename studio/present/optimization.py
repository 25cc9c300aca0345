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


FIDELITY_COLUMNS = ("output", "kind", "cosine", "max abs err", "rel L2", "SQNR dB", "figures for its kind")


def fidelity_rows(fidelity: dict, missing: str = "-") -> list[tuple[str, ...]]:
    """One row per output; an output that cannot be measured on these inputs shows no figure, only why."""
    rows = []
    for o in fidelity["outputs"]:
        if o.get("not_measurable"):
            rows.append((o["name"], o["kind"], missing, missing, missing, missing,
                         f"not measurable on these inputs: {o['not_measurable']}"))
            continue
        rows.append((o["name"], o["kind"], f"{o['cosine']:.5f}", f"{o['max_abs_error']:.3g}",
                     f"{o['relative_l2']:.4f}", "identical" if o["identical"] else f"{o['sqnr_db']:.1f}",
                     kind_figures(o, missing)))
    return rows


def kind_figures(output: dict, missing: str = "-") -> str:
    """The figures that mean something for the output's kind (engine.optimize.output_metrics.KIND_METRICS), in a few words."""
    figures = [(label, output.get(key), pattern) for label, key, pattern in (
        ("top-1 agree", "top1_agreement", ".4f"), ("top-5 agree", "top5_agreement", ".4f"),
        ("KL", "kl_divergence", ".3g"), ("pooled cosine", "pooled_cosine", ".5f"),
        ("thresholded agree", "threshold_agreement", ".4f"))]
    text = ", ".join(f"{label} {format(value, pattern)}" for label, value, pattern in figures if value is not None)
    if output.get("optimized_not_finite"):
        text = "optimized gives NaN/inf" + (f"; {text}" if text else "")
    return text or missing


def verdict(data: dict) -> str:
    """"accepted", "below budget" or "not judged": a rejected result is never called a success."""
    budget = data["fidelity"]["budget"]
    if data["status"] == "completed":
        return "accepted"
    return budget["verdict"] if budget else "below budget"


def budget_lines(fidelity: dict) -> list[str]:
    """What the result was judged on and against: the data, the budget (default or the recipe's), the verdict."""
    budget = fidelity["budget"]
    data = fidelity.get("data") or {}
    lines = [f"fidelity: {fidelity['summary']}" if fidelity.get("summary") else f"fidelity on {fidelity['samples']} inputs"]
    if data.get("description"):
        lines.append(f"fidelity data: {data['description']}")
    if data.get("synthetic"):
        lines.append("measured on synthetic inputs, not real data: give calibration data to judge on real inputs")
    if budget:
        source = "default budget (the recipe sets none)" if budget["source"] == "default" else "budget"
        lines.append(f"{source} {budget['budget']}: {budget['verdict'].upper() if not budget['met'] else 'met'}")
        lines += [f"  below budget: {violation}" for violation in budget["violations"]]
        lines += [f"  not judged: {reason}" for reason in budget["not_judged"]]
        lines += [f"  note: {note}" for note in budget["notes"]]
    return lines


def rejection_text(report: OptimizeReport) -> str:
    """One paragraph for a rejected result: why, and what was (not) written."""
    data = report.to_dict()
    budget = data["fidelity"]["budget"] or {"violations": [], "not_judged": []}
    reasons = "; ".join([*budget["violations"], *budget["not_judged"]])
    return (f"rejected, {verdict(data)} ({reasons}); nothing was written to the output path and nothing was saved; "
            f"the rejected model is at {data['optimized_model']} for inspection only")


def optimize_text(report: OptimizeReport) -> str:
    data = report.to_dict()
    fidelity = data["fidelity"]
    lines = ["steps run:"]
    for step in data["steps"]:
        origin = "from cache" if step["cached"] else f"{step['seconds']:.2f} s"
        lines.append(f"  {step['title']} ({origin})")
        lines += [f"    note: {note}" for note in step["notes"]]
    lines += ["", table(FIDELITY_COLUMNS, fidelity_rows(fidelity))]
    lines += budget_lines(fidelity)
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
        lines.append(f"accepted: written {output['path']} ({byte_size(output['size_bytes'])})"
                     + (f"; saved as artifact {data['artifact_id']}" if data["artifact_id"] else "; not saved"))
    else:
        lines.append(f"REJECTED ({verdict(data)}): nothing written to the output path and nothing saved; "
                     f"the rejected model is kept for inspection only at {data['optimized_model']}")
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
        if not ranking:  # not ranked: the fully quantized candidate met the budget, or could not be built
            continue
        worst = ", ".join(f"{entry['node']} ({entry['op_type']})" for entry in ranking[:5])
        lines.append(f"most sensitive nodes for {family}: {worst}")
    return "\n".join(lines)
