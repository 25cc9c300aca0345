"""Reading layer profiles: printable tables, and two profiles side by side (e.g. FP32 against INT8).

The comparison puts the *measured* speedup of each op family and each compute layer next to the speedup its
MACs would *predict*. They disagree often, and that is the point: INT8 keeps the MACs and still runs faster,
pruning removes MACs and may not, and quantize/dequantize nodes cost time no MAC count shows (DESIGN §4:
speedups are measured times; MACs only explain them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.profiling.layer_profile import LayerProfile, NodeTiming

OP_FAMILIES = {
    **dict.fromkeys(("Conv", "FusedConv", "NhwcFusedConv", "ConvInteger", "QLinearConv", "Conv1d", "Conv2d",
                     "Conv3d"), "Conv"),
    **dict.fromkeys(("MatMul", "FusedMatMul", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul",
                     "MatMulIntegerToFloat", "MatMulNBits"), "MatMul"),
    **dict.fromkeys(("Gemm", "FusedGemm", "QGemm", "Linear"), "Gemm"),
    **dict.fromkeys(("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"), "Quantize/Dequantize"),
}


def op_family(op_type: str) -> str:
    """Float, fused and integer forms of one operation share a family, so FP32 and INT8 rows line up."""
    return OP_FAMILIES.get(op_type, op_type)


@dataclass(frozen=True)
class SpeedupRow:
    name: str  # op family, or "baseline layer -> candidate layer"
    baseline_us: float | None  # per inference
    candidate_us: float | None
    measured_speedup: float | None  # baseline time / candidate time
    baseline_macs: int | None  # per inference
    candidate_macs: int | None
    predicted_speedup: float | None  # baseline MACs / candidate MACs

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProfileComparison:
    baseline: str
    candidate: str
    end_to_end: SpeedupRow  # profiled median wall time per inference, and total MACs
    op_families: tuple[SpeedupRow, ...]
    layers: tuple[SpeedupRow, ...]
    pairing: str  # how the layers were paired, and what could not be

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "candidate": self.candidate, "end_to_end": self.end_to_end.to_dict(),
                "op_families": [row.to_dict() for row in self.op_families],
                "layers": [row.to_dict() for row in self.layers], "pairing": self.pairing}


def compare_profiles(baseline: LayerProfile, candidate: LayerProfile) -> ProfileComparison:
    """Per op family and per compute layer (nodes with MACs), baseline against candidate, per inference."""
    families = _family_rows(baseline, candidate)
    layers, pairing = _layer_rows(baseline, candidate)
    total_macs = (_total_macs(baseline), _total_macs(candidate))
    end_to_end = _row("whole model (profiled median)", baseline.profiled_run_ms.get("median"),
                      candidate.profiled_run_ms.get("median"), *total_macs, scale=1000.0)
    return ProfileComparison(baseline.model, candidate.model, end_to_end, families, layers, pairing)


def _row(name: str, base_time: float | None, cand_time: float | None, base_macs: int | None,
         cand_macs: int | None, *, scale: float = 1.0) -> SpeedupRow:
    base_us = base_time * scale if base_time is not None else None
    cand_us = cand_time * scale if cand_time is not None else None
    measured = base_us / cand_us if base_us and cand_us else None
    predicted = base_macs / cand_macs if base_macs and cand_macs else None
    return SpeedupRow(name, base_us, cand_us, measured, base_macs, cand_macs, predicted)


def _family_rows(baseline: LayerProfile, candidate: LayerProfile) -> tuple[SpeedupRow, ...]:
    def per_family(profile: LayerProfile) -> dict[str, tuple[float, int | None]]:
        found: dict[str, tuple[float, int | None]] = {}
        for op in profile.op_types:
            family = op_family(op.op_type)
            time, macs = found.get(family, (0.0, None))
            if op.macs is not None:
                macs = (macs or 0) + op.macs
            found[family] = (time + op.total_us / profile.iterations, macs)
        return found

    base, cand = per_family(baseline), per_family(candidate)
    names = sorted(set(base) | set(cand), key=lambda f: -max(base.get(f, (0.0,))[0], cand.get(f, (0.0,))[0]))
    return tuple(_row(name, base.get(name, (None, None))[0], cand.get(name, (None, None))[0],
                      base.get(name, (None, None))[1], cand.get(name, (None, None))[1]) for name in names)


def _layer_rows(baseline: LayerProfile, candidate: LayerProfile) -> tuple[tuple[SpeedupRow, ...], str]:
    """Compute layers paired in execution order when both have the same number, else by name."""
    base = sorted((n for n in baseline.nodes if n.macs is not None), key=lambda n: n.order)
    cand = sorted((n for n in candidate.nodes if n.macs is not None), key=lambda n: n.order)
    if len(base) == len(cand):
        pairs = list(zip(base, cand))
        pairing = f"{len(pairs)} compute layers paired in execution order"
    else:
        by_name = {node.name: node for node in cand}
        pairs = [(node, by_name[node.name]) for node in base if node.name in by_name]
        pairing = (f"the profiles have {len(base)} and {len(cand)} compute layers; {len(pairs)} paired by name, "
                   f"{len(base) - len(pairs)} baseline layers left unpaired")
    rows = tuple(_layer_row(a, b, baseline.iterations, candidate.iterations) for a, b in pairs)
    return rows, pairing


def _layer_row(base: NodeTiming, cand: NodeTiming, base_runs: int, cand_runs: int) -> SpeedupRow:
    name = base.name if base.name == cand.name else f"{base.name} -> {cand.name}"
    return _row(f"{name} ({op_family(base.op_type)})", base.total_us / base_runs, cand.total_us / cand_runs,
                base.macs * base.calls // base_runs, cand.macs * cand.calls // cand_runs)


def _total_macs(profile: LayerProfile) -> int | None:
    known = [op.macs for op in profile.op_types if op.macs is not None]
    return sum(known) if known else None


# ---- printable tables ---------------------------------------------------------------------------------------


def profile_text(profile: LayerProfile, *, top: int = 15) -> str:
    """Placement first (so a fallback cannot be missed), then the op-type table, then the slowest nodes."""
    lines = [f"{profile.model} on {profile.requested_provider} ({profile.runtime}), batch {profile.batch_size}, "
             f"{profile.iterations} profiled inferences", f"placement: {profile.placement.message()}", "",
             f"{'op type':<24}{'share':>8}{'mean us':>12}{'calls':>8}{'MACs/inf':>14}  providers"]
    for op in profile.op_types:
        macs = f"{op.macs:,}" if op.macs is not None else "-"
        lines.append(f"{op.op_type:<24}{op.share:>8.1%}{op.mean_us:>12.1f}{op.calls:>8}{macs:>14}  "
                     f"{', '.join(op.providers)}")
    lines += ["", f"{'node':<36}{'op type':<20}{'share':>8}{'mean us':>12}{'calls':>8}{'MACs':>14}  provider"]
    for node in profile.nodes[:top]:
        macs = f"{node.macs:,}" if node.macs is not None else "-"
        flag = "  <- not on the requested provider" if node.off_requested else ""
        lines.append(f"{node.name[:35]:<36}{node.op_type[:19]:<20}{node.share:>8.1%}{node.mean_us:>12.1f}"
                     f"{node.calls:>8}{macs:>14}  {node.provider}{flag}")
    if len(profile.nodes) > top:
        lines.append(f"... {len(profile.nodes) - top} more nodes")
    for note in profile.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def comparison_text(comparison: ProfileComparison) -> str:
    def number(value: float | None, pattern: str, unit: str = "") -> str:
        return format(value, pattern) + unit if value is not None else "-"

    header = f"{'':<44}{'base us':>11}{'cand us':>11}{'measured':>10}{'predicted':>11}"
    lines = [f"{comparison.baseline} -> {comparison.candidate}", header]
    for row in (comparison.end_to_end, *comparison.op_families, *comparison.layers):
        lines.append(f"{row.name[:43]:<44}{number(row.baseline_us, '.1f'):>11}{number(row.candidate_us, '.1f'):>11}"
                     f"{number(row.measured_speedup, '.2f', 'x'):>10}{number(row.predicted_speedup, '.2f', 'x'):>11}")
    lines.append(f"layers: {comparison.pairing}")
    return "\n".join(lines)
