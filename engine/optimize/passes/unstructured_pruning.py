"""Unstructured L1 pruning: the smallest weights set to zero, reported honestly as sparsity.

Dense kernels still multiply the zeros, so this gives neither a speedup nor a
smaller file (zeros are stored like any other value); it is offered because a
sparse runtime or a compressor downstream can use it, and the studio says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.optimize.params import names, number
from engine.optimize.passes.base import (
    PRUNING,
    ModelTraits,
    OptimizationPass,
    PassContext,
    PassOutput,
    Stage,
    TorchArtifact,
)
from engine.optimize.passes.torch_modules import (
    check_runs,
    copied,
    layer_name,
    output_layer,
    resolve_layers,
)


@dataclass(frozen=True)
class PruningConfig:
    """The knobs both pruning passes read (structured pruning adds its own)."""

    ratio: float = number(0.5, 0.0, 1.0, "share of channels (structured) or of weights (unstructured) removed",
                          low_open=True, high_open=True, flag="--prune-ratio")
    ignored_layers: tuple[str, ...] = names("module names kept whole; empty: the output layer (the last Linear)")


class UnstructuredPruningPass(OptimizationPass):
    name = "unstructured_pruning"
    title = "unstructured L1 pruning"
    stage = Stage.PRUNE
    section = PRUNING
    choices = {"unstructured": "Unstructured (L1 sparsity)"}
    config_type = PruningConfig
    accepts = "torch"
    weight = 0.3

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        return [f"zeroes {config.ratio:.0%} of the weights of each Linear/Conv layer: dense kernels still multiply "
                "the zeros, so expect no speedup and no smaller file; it is reported as sparsity only"]

    def run(self, artifact: TorchArtifact, config: PruningConfig, context: PassContext) -> PassOutput:
        from torch import nn
        from torch.nn.utils import prune

        module = copied(artifact)
        ignored = resolve_layers(module, config.ignored_layers, "pruning.ignored_layers")
        notes = []
        if not ignored and (last := output_layer(module)) is not None:
            ignored = [last]
            notes.append(f"left the output layer '{layer_name(module, last)}' dense")
        layers = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
                  and not any(m is i for i in ignored)]
        report_layers = []
        for index, layer in enumerate(layers):
            context.check_cancel()
            prune.l1_unstructured(layer, "weight", amount=config.ratio)
            prune.remove(layer, "weight")  # make the zeros permanent; the tensor stays dense
            zeros = int((layer.weight == 0).sum())
            report_layers.append({"layer": layer_name(module, layer), "sparsity": zeros / layer.weight.numel()})
            context.progress((index + 1) / len(layers), f"pruned {index + 1}/{len(layers)} layers")
        check_runs(module, artifact, "unstructured pruning")
        total = sum(p.numel() for p in module.parameters())
        zeros = sum(int((p == 0).sum()) for p in module.parameters())
        report = {"overall_sparsity": zeros / max(total, 1), "layers": report_layers,
                  "speedup_expected": False, "reason": "dense kernels do not skip zeros"}
        return PassOutput(TorchArtifact(module, artifact.input_names, artifact.example_feed), report, notes)
