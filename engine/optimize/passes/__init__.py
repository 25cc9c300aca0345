"""Optimization passes: each module here may define `OptimizationPass` subclasses, and importing this package
imports every module, so defining a pass in a new file is all it takes to register it.

Importing stays cheap: torch, onnxruntime.quantization, torch_pruning and onnxconverter_common are imported
inside the passes that use them. No module here may import engine.optimize.recipe, which is built from them.
"""

import importlib
import pkgutil

from engine.optimize.passes.base import (
    GRAPH,
    LOW_RANK,
    PRUNING,
    QUANTIZATION,
    ModelTraits,
    OnnxArtifact,
    OptimizationPass,
    PassContext,
    PassOutput,
    PassSection,
    Stage,
    TorchArtifact,
    get_pass,
    registered,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "GRAPH", "LOW_RANK", "PRUNING", "QUANTIZATION", "ModelTraits", "OnnxArtifact", "OptimizationPass", "PassContext",
    "PassOutput", "PassSection", "Stage", "TorchArtifact", "get_pass", "registered",
]
