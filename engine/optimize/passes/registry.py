"""The registry of optimization passes, by name, and the order they run in (DESIGN.md §3)."""

from __future__ import annotations

from engine.errors import OptimizationError

# prune → low-rank → export to ONNX → ONNX clean-up → graph optimization → quantization
PASS_ORDER = (
    "structured_pruning", "unstructured_pruning", "low_rank", "export_onnx", "prepare_onnx", "graph_optimization",
    "dynamic_int8", "static_int8", "fp16", "auto_quantization",
)
_PASSES: dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make a pass available by its `name`."""
    if cls.name not in PASS_ORDER:
        raise ValueError(f"pass '{cls.name}' has no place in PASS_ORDER")
    _PASSES[cls.name] = cls
    return cls


def get_pass(name: str):
    """An instance of the registered pass `name` (its module is imported on first use)."""
    _load_all()
    if name not in _PASSES:
        raise OptimizationError(f"unknown optimization pass '{name}'; known: {', '.join(PASS_ORDER)}")
    return _PASSES[name]()


def registered() -> dict[str, type]:
    _load_all()
    return dict(sorted(_PASSES.items(), key=lambda item: PASS_ORDER.index(item[0])))


def _load_all() -> None:
    """Import the pass modules; none imports torch or onnxruntime at module level, so this is cheap."""
    from engine.optimize.passes import (  # noqa: F401
        auto_quantization,
        export_onnx,
        graph_optimization,
        low_rank,
        prepare_onnx,
        quantization,
        structured_pruning,
        unstructured_pruning,
    )
