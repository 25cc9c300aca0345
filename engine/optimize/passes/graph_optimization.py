"""ONNX Runtime graph optimization, saved to a file so the fusions it makes are a visible step.

ONNX Runtime applies the same optimizations whenever it loads a model, so this
does not change steady-state latency; it makes the fused graph inspectable and
shortens session start. Extended and all levels create `com.microsoft` fused
ops the quantizers cannot quantize, so before quantization only the basic
level is saved, and the runtime applies the rest when it loads the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import OptimizationError, first_line
from engine.optimize.params import from_device, from_recipe
from engine.optimize.passes import onnx_tools
from engine.optimize.passes.base import (
    GRAPH,
    ModelTraits,
    OnnxArtifact,
    OptimizationPass,
    PassContext,
    PassOutput,
    Stage,
)
from engine.optimize.passes.quantization import ort_errors


@dataclass(frozen=True)
class GraphOptimizationConfig:
    requested_level: str = from_recipe("graph.level")
    quantized_later: bool = from_recipe("quantizes")
    provider: str = from_device("provider")

    @property
    def level(self) -> str:
        """The level saved: basic where a quantizer follows, as fused com.microsoft ops cannot be quantized."""
        return "basic" if self.quantized_later and self.requested_level in ("extended", "all") else self.requested_level


class GraphOptimizationPass(OptimizationPass):
    name = "graph_optimization"
    title = "graph optimization"
    stage = Stage.GRAPH
    section = GRAPH
    choices = {"basic": "Basic", "extended": "Extended", "all": "All (this CPU and provider only)"}
    config_type = GraphOptimizationConfig
    accepts = "onnx"
    uses_device = True  # the saved graph is specific to the execution provider it was optimized for
    weight = 0.3

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        notes = ["ONNX Runtime applies these optimizations at load time anyway: the saved file shows the fusions and "
                 "starts faster, but steady-state latency will not change"]
        if config.level != config.requested_level:
            notes.append(f"level '{config.requested_level}' makes fused com.microsoft ops the quantizer cannot "
                         f"quantize: level '{config.level}' is saved before quantization, and ONNX Runtime applies "
                         "the rest when it loads the quantized model")
        if config.level == "all":
            notes.append("level 'all' saves layout changes specific to this CPU and provider: "
                         "run the file on the same kind of machine")
        return notes

    def run(self, artifact: OnnxArtifact, config: GraphOptimizationConfig, context: PassContext) -> PassOutput:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = {
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[config.level]
        options.optimized_model_filepath = str(context.output_path)
        context.progress(0.2, f"ONNX Runtime optimizing at level '{config.level}'")
        providers = [config.provider] + (["CPUExecutionProvider"] if config.provider != "CPUExecutionProvider" else [])
        try:
            ort.InferenceSession(str(artifact.path), sess_options=options, providers=providers)
        except (RuntimeError, *ort_errors()) as error:
            raise OptimizationError(f"ONNX Runtime could not optimize the graph: {first_line(error)}") from error
        before = onnx_tools.op_histogram(onnx_tools.load(artifact.path))
        after = onnx_tools.op_histogram(onnx_tools.load(context.output_path))
        report = {
            "level": config.level,
            "provider": config.provider,
            "nodes_before": sum(before.values()),
            "nodes_after": sum(after.values()),
            "ops_before": before,
            "ops_after": after,
            "new_ops": sorted(set(after) - set(before)),
        }
        return PassOutput(OnnxArtifact(context.output_path), report)
