"""Optimization passes: registered classes with typed configs, run in the order DESIGN.md §3 gives.

Importing this package is cheap: torch, onnxruntime.quantization, torch_pruning
and onnxconverter_common are imported inside the passes that use them.
"""

from engine.optimize.passes.base import (
    ModelTraits,
    OnnxArtifact,
    OptimizationPass,
    PassContext,
    PassOutput,
    TorchArtifact,
)
from engine.optimize.passes.registry import PASS_ORDER, get_pass, register, registered

__all__ = [
    "PASS_ORDER", "ModelTraits", "OnnxArtifact", "OptimizationPass", "PassContext", "PassOutput", "TorchArtifact",
    "get_pass", "register", "registered",
]
