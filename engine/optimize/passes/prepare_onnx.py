"""Make an ONNX model from the wild fit for quantization: weights out of Constant nodes, opset ≥ 13.

Exports from other frameworks often hold weights in `Constant` nodes (the
quantizers only quantize initializers) or use an opset below 13, where
DequantizeLinear has no `axis` and per-channel quantization is impossible. This
step fixes both, says what it changed, and changes nothing when nothing needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.optimize.passes import onnx_tools
from engine.optimize.passes.base import (
    OnnxArtifact,
    OptimizationPass,
    PassContext,
    PassOutput,
    Stage,
)


@dataclass(frozen=True)
class PrepareOnnxConfig:
    min_opset: int = onnx_tools.MIN_QUANTIZATION_OPSET
    fold_constant_weights: bool = True


class PrepareOnnxPass(OptimizationPass):
    name = "prepare_onnx"
    title = "ONNX clean-up"
    stage = Stage.CLEAN_UP
    config_type = PrepareOnnxConfig
    accepts = "onnx"
    weight = 0.2

    def run(self, artifact: OnnxArtifact, config: PrepareOnnxConfig, context: PassContext) -> PassOutput:
        model = onnx_tools.load(artifact.path)
        notes = []
        folded = onnx_tools.fold_constant_weights(model) if config.fold_constant_weights else []
        if folded:
            notes.append(f"moved {len(folded)} weight(s) from Constant nodes into initializers, "
                         "so they can be quantized")
        context.check_cancel()
        opset_before = onnx_tools.default_opset(model)
        if opset_before < config.min_opset:
            context.progress(0.4, f"upgrading opset {opset_before} → {config.min_opset}")
            model = onnx_tools.upgrade_opset(model, config.min_opset)
            notes.append(f"upgraded opset {opset_before} → {config.min_opset} with the ONNX version converter "
                         "(per-channel quantization needs DequantizeLinear's axis)")
        onnx_tools.save(model, context.output_path)
        report = {"folded_constants": folded, "opset_before": opset_before,
                  "opset_after": onnx_tools.default_opset(model), "changed": bool(folded) or bool(notes)}
        return PassOutput(OnnxArtifact(context.output_path), report, notes or ["nothing to fix"])
