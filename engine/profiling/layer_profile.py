"""Where the time goes, layer by layer, and where each layer really ran.

A profile is a separate run from the timed benchmark, because profiling perturbs timing (ONNX Runtime writes
an event per node per run; torch.profiler records every op). Both runtimes give the same tables:

- per node: calls, mean and total time, share of the node time, the provider (or device) that ran it, MACs;
- per op type: the same, summed;
- placement: how many nodes and how much time each provider took, and every node that ran somewhere other
  than the provider asked for. A run whose accelerator quietly handed layers back to the CPU says so loudly.

Warm-up runs are excluded. MACs come from `engine.model.macs`' counting rules applied to the shapes the runtime
reports for each node as it ran (after fusion), so fused layers keep their MACs; ops engine.model.macs does not count
(activations, pooling, reshapes) show none. The ONNX Runtime trace file is written to a private temporary
folder and deleted, so profiling leaves nothing behind in the working directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.errors import InputError
from engine.model import macs

PROFILE_FORMAT = 1  # bump when LayerProfile.to_dict changes shape
FUSED_MACS_NOTE = ("MACs of nodes the runtime fused or re-laid out are counted at the shapes they ran with; "
                   "a blocked layout (NCHWc) may pad channels to the vector width, and that padded work is counted")


@dataclass(frozen=True)
class NodeEvent:
    """One node executed once, as a runtime's profiler saw it."""

    name: str
    op_type: str
    provider: str
    duration_us: float
    run: int  # which profiled inference (0-based, warm-up excluded)
    input_shapes: tuple[tuple[int, ...], ...] = ()
    output_shapes: tuple[tuple[int, ...], ...] = ()
    macs: int | None = None  # when the runtime knows them; else counted from the shapes by engine.model.macs' rules


@dataclass(frozen=True)
class NodeTiming:
    name: str
    op_type: str
    provider: str
    calls: int
    total_us: float
    mean_us: float
    share: float  # of all node time
    macs: int | None  # per call
    off_requested: bool  # ran on another provider than the one asked for
    order: int = 0  # position in execution order (first run), to pair layers of two profiles


@dataclass(frozen=True)
class OpTypeTiming:
    op_type: str
    nodes: int
    calls: int
    total_us: float
    mean_us: float  # per call
    share: float
    macs: int | None  # per inference, over the nodes of this type with known MACs
    providers: tuple[str, ...]


@dataclass(frozen=True)
class Placement:
    requested: str
    nodes_by_provider: dict[str, int]
    time_share_by_provider: dict[str, float]
    off_requested_nodes: tuple[str, ...]
    off_requested_share: float  # of node time

    @property
    def fallback(self) -> bool:
        return bool(self.off_requested_nodes)

    def message(self) -> str:
        total = sum(self.nodes_by_provider.values())
        if not self.fallback:
            return f"all {total} nodes ran on {self.requested}, as requested"
        where = ", ".join(f"{provider} ({count})" for provider, count in self.nodes_by_provider.items()
                          if provider != self.requested)
        shown = ", ".join(self.off_requested_nodes[:8]) + (", ..." if len(self.off_requested_nodes) > 8 else "")
        return (f"FALLBACK: {len(self.off_requested_nodes)} of {total} nodes ({self.off_requested_share:.1%} of node "
                f"time) did not run on the requested {self.requested} but on {where}: {shown}")


@dataclass(frozen=True)
class LayerProfile:
    runtime: str  # "onnxruntime" or "torch"
    model: str
    requested_provider: str
    batch_size: int
    iterations: int  # profiled inferences, warm-up excluded
    nodes: tuple[NodeTiming, ...]  # by falling total time
    op_types: tuple[OpTypeTiming, ...]
    placement: Placement
    node_time_per_inference_us: float
    unattributed_per_inference_us: float | None  # runtime time outside any node (scheduling, copies)
    profiled_run_ms: dict[str, float] = field(default_factory=dict)  # wall time per profiled inference
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        values = asdict(self)
        values["format"] = PROFILE_FORMAT
        values["placement"]["fallback"] = self.placement.fallback
        values["placement"]["message"] = self.placement.message()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> LayerProfile:
        if values.get("format") != PROFILE_FORMAT:
            raise InputError(f"this layer profile has format {values.get('format')}; "
                             f"this version reads {PROFILE_FORMAT}")
        placement = {k: v for k, v in values["placement"].items() if k in Placement.__dataclass_fields__}
        placement["off_requested_nodes"] = tuple(placement["off_requested_nodes"])
        return cls(
            runtime=values["runtime"], model=values["model"], requested_provider=values["requested_provider"],
            batch_size=values["batch_size"], iterations=values["iterations"],
            nodes=tuple(NodeTiming(**node) for node in values["nodes"]),
            op_types=tuple(OpTypeTiming(**{**op, "providers": tuple(op["providers"])}) for op in values["op_types"]),
            placement=Placement(**placement), node_time_per_inference_us=values["node_time_per_inference_us"],
            unattributed_per_inference_us=values["unattributed_per_inference_us"],
            profiled_run_ms=dict(values["profiled_run_ms"]), notes=tuple(values["notes"]))


def build_profile(events: Sequence[NodeEvent], *, runtime: str, model: str, requested: str, batch_size: int,
                  iterations: int, run_walls_ns: Sequence[int], runtime_run_us: float | None = None,
                  macs_by_name: Mapping[str, int | None] | None = None, notes: Iterable[str] = ()) -> LayerProfile:
    """Aggregates node events (in execution order) into the node, op-type and placement tables.

    A node's MACs come from `macs_by_name` (the model's own layers, counted by engine.model.macs) when it kept its
    name, else from the event, else from the shapes it ran with (nodes the runtime fused or rewrote).
    """
    macs_by_name = macs_by_name or {}
    if iterations < 1:
        raise InputError("a profile needs at least one profiled inference")
    grouped: dict[str, list[NodeEvent]] = {}
    for event in events:
        grouped.setdefault(event.name, []).append(event)
    all_time = sum(event.duration_us for event in events) or 1.0
    nodes = []
    for order, (name, calls) in enumerate(grouped.items()):
        total = sum(event.duration_us for event in calls)
        first = calls[0]
        macs = macs_by_name.get(name)
        if macs is None:
            macs = first.macs if first.macs is not None else node_macs(first.op_type, first.input_shapes,
                                                                        first.output_shapes)
        nodes.append(NodeTiming(name, first.op_type, first.provider, len(calls), total, total / len(calls),
                                total / all_time, macs, first.provider != requested, order))
    nodes.sort(key=lambda node: -node.total_us)
    node_time = sum(node.total_us for node in nodes) / iterations
    walls = np.asarray(run_walls_ns, dtype=np.float64) / 1e6
    return LayerProfile(
        runtime=runtime, model=model, requested_provider=requested, batch_size=batch_size, iterations=iterations,
        nodes=tuple(nodes), op_types=_op_types(nodes, all_time, iterations), placement=_placement(nodes, requested),
        node_time_per_inference_us=node_time,
        unattributed_per_inference_us=None if runtime_run_us is None else max(runtime_run_us - node_time, 0.0),
        profiled_run_ms={"median": float(np.median(walls)), "mean": float(walls.mean())} if walls.size else {},
        notes=tuple(notes))


def node_macs(op_type: str, input_shapes: Sequence[tuple[int, ...]], output_shapes: Sequence[tuple[int, ...]]
              ) -> int | None:
    """MACs of one node from the shapes it ran with, by engine.model.macs' rules; None for ops it does not count.

    Runtimes leave some initializers out of the shapes they report, so a convolution whose weight shape does
    not fit its input (rank, channel groups) is not counted rather than counted wrong.
    """
    from onnx import helper

    if op_type not in macs.COUNTED_OPS:
        return None
    weight_index = macs.CONV_WEIGHT_INPUT.get(op_type)
    if weight_index is not None:
        data = input_shapes[0] if input_shapes else ()
        weight = input_shapes[weight_index] if len(input_shapes) > weight_index else ()
        if len(weight) != len(data) or len(data) < 3 or not weight[1] or data[1] % weight[1]:
            return None

    inputs = [f"input_{index}" for index in range(len(input_shapes))]
    outputs = [f"output_{index}" for index in range(max(len(output_shapes), 1))]
    shapes = {name: tuple(shape) for name, shape in zip(inputs + outputs, [*input_shapes, *output_shapes])}
    return macs.node_macs(helper.make_node(op_type, inputs, outputs), shapes)


def _op_types(nodes: Sequence[NodeTiming], all_time: float, iterations: int) -> tuple[OpTypeTiming, ...]:
    by_type: dict[str, list[NodeTiming]] = {}
    for node in nodes:
        by_type.setdefault(node.op_type, []).append(node)
    rows = []
    for op_type, members in by_type.items():
        total = sum(node.total_us for node in members)
        calls = sum(node.calls for node in members)
        known = [node for node in members if node.macs is not None]
        macs = sum(node.macs * node.calls for node in known) // iterations if known else None
        rows.append(OpTypeTiming(op_type, len(members), calls, total, total / calls, total / all_time, macs,
                                 tuple(sorted({node.provider for node in members}))))
    return tuple(sorted(rows, key=lambda row: -row.total_us))


def _placement(nodes: Sequence[NodeTiming], requested: str) -> Placement:
    counts: dict[str, int] = {}
    times: dict[str, float] = {}
    for node in nodes:
        counts[node.provider] = counts.get(node.provider, 0) + 1
        times[node.provider] = times.get(node.provider, 0.0) + node.total_us
    total = sum(times.values()) or 1.0
    off = [node for node in nodes if node.off_requested]
    return Placement(requested, counts, {p: t / total for p, t in times.items()}, tuple(n.name for n in off),
                     sum(node.total_us for node in off) / total)


# ---- ONNX Runtime ----------------------------------------------------------------------------------------------

