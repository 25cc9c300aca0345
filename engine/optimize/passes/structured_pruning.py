"""Structured pruning with Torch-Pruning's DepGraph: channels and attention heads physically removed.

Unlike masks, removing channels shrinks every dependent layer (the next conv's
inputs, batch norms, residual partners), so the exported model really does
less work. Attention blocks that say how many heads they have are pruned by
whole heads (head width kept) and their head count attribute is updated, so
the reshape into heads stays consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import OptimizationError, first_line
from engine.optimize.params import boolean, choice, from_recipe, integer
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
    attention_projections,
    check_runs,
    copied,
    example_tensors,
    layer_name,
    output_layer,
    parameter_count,
    resolve_layers,
    set_head_widths,
)
from engine.optimize.passes.unstructured_pruning import PruningConfig

TAYLOR_MAX_SAMPLES = 16


@dataclass(frozen=True)
class StructuredPruningConfig(PruningConfig):
    importance: str = choice("l1", ("l1", "l2", "taylor"), "how channels are ranked: weight magnitude (l1, l2) or "
                             "taylor (gradients on calibration data)", flag="--prune-importance")
    round_to: int | None = integer(None, 1, 1024, "keep channel counts a multiple of this; empty: any count",
                                   optional=True, example=8)
    global_pruning: bool = boolean(False, "rank channels across all layers instead of within each layer")
    prune_heads: bool = boolean(True, "remove attention heads with the same ratio (head width kept) where the model "
                                "says how many it has")
    calibration_samples: int = from_recipe("calibration.samples")

    @property
    def taylor_samples(self) -> int:
        return min(self.calibration_samples, TAYLOR_MAX_SAMPLES)


class StructuredPruningPass(OptimizationPass):
    name = "structured_pruning"
    title = "structured pruning"
    stage = Stage.PRUNE
    section = PRUNING
    choices = {"structured": "Structured (channels, heads)"}
    config_type = StructuredPruningConfig
    accepts = "torch"
    uses_inputs = True  # the dependency graph is traced, and Taylor importance uses calibration data

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        notes = [f"removes {config.ratio:.0%} of the channels of each prunable layer"
                 + (" (globally ranked)" if config.global_pruning else "")
                 + "; without fine-tuning the outputs change noticeably: check the fidelity report"]
        if config.importance == "taylor":
            notes.append(f"Taylor importance uses gradients on {config.taylor_samples} calibration samples, "
                         "with the model's own top-1 predictions as labels")
        return notes

    def run(self, artifact: TorchArtifact, config: StructuredPruningConfig, context: PassContext) -> PassOutput:
        import torch_pruning as tp

        module = copied(artifact)
        before = parameter_count(module)
        widths_before = _layer_widths(module)
        ignored = resolve_layers(module, config.ignored_layers, "pruning.ignored_layers")
        notes = []
        if not ignored:
            last = output_layer(module)
            ignored = [last] if last is not None else []
            if last is not None:
                notes.append(f"kept the output layer '{layer_name(module, last)}' whole (its outputs are the model's)")
        attention = attention_projections(module) if config.prune_heads else []
        heads = {layer: getattr(owner, attribute) for owner, attribute, layers in attention for layer in layers}
        context.progress(0.1, "building the dependency graph")
        context.check_cancel()
        importance = _importance(config.importance)
        try:
            pruner = tp.pruner.MetaPruner(
                module, example_tensors(artifact), importance=importance, pruning_ratio=config.ratio,
                ignored_layers=ignored, round_to=config.round_to, global_pruning=config.global_pruning,
                num_heads=heads, prune_num_heads=bool(heads), prune_head_dims=not heads,
                head_pruning_ratio=config.ratio if heads else 0.0,
            )
            if config.importance == "taylor":
                _accumulate_gradients(module, artifact, context, config.taylor_samples)
            context.check_cancel()
            context.progress(0.7, "removing channels")
            pruner.step()
        except (RuntimeError, ValueError, KeyError, AssertionError) as error:
            raise OptimizationError(f"Torch-Pruning could not prune this model: {first_line(error)}") from error
        finally:
            module.zero_grad(set_to_none=True)
        head_report = []
        for owner, attribute, layers in attention:
            new_heads = pruner.num_heads.get(layers[0], getattr(owner, attribute))
            before_heads = getattr(owner, attribute)
            head_report.append({"module": layer_name(module, owner), "before": before_heads, "after": new_heads})
            setattr(owner, attribute, new_heads)
            set_head_widths(owner, new_heads, layers)
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        hint = "; set pruning.prune_heads to false or ignore the attention layers" if attention else ""
        check_runs(module, artifact, "structured pruning", hint)
        after = parameter_count(module)
        if after >= before:
            raise OptimizationError(
                "structured pruning removed nothing: every prunable layer is ignored or coupled to an ignored one"
            )
        widths_after = _layer_widths(module)
        report = {
            "parameters_before": before,
            "parameters_after": after,
            "parameter_ratio": after / before,
            "layers": [{"layer": name, "before": widths_before[name], "after": widths_after.get(name)}
                       for name in widths_before if widths_after.get(name) != widths_before[name]],
            "attention_heads": head_report,
            "importance": config.importance,
        }
        return PassOutput(TorchArtifact(module, artifact.input_names, artifact.example_feed), report, notes)


def _importance(name: str):
    import torch_pruning as tp

    if name == "taylor":
        return tp.importance.TaylorImportance()
    return tp.importance.MagnitudeImportance(p=1 if name == "l1" else 2)


def _accumulate_gradients(module, artifact: TorchArtifact, context: PassContext, samples: int) -> None:
    """Gradients for Taylor importance, with the model's own predictions as labels (no labels needed)."""
    import torch

    feeds = context.inputs.calibration_samples(context.source_specs, samples)
    for parameter in module.parameters():
        parameter.requires_grad_(True)
    module.zero_grad(set_to_none=True)
    total = len(feeds)
    for index, feed in enumerate(feeds):
        context.check_cancel()
        tensors = [torch.from_numpy(feed[name]) for name in artifact.input_names]
        output = module(*tensors)
        output = output[0] if isinstance(output, (tuple, list)) else output
        if output.is_floating_point() and output.dim() >= 2 and output.shape[-1] >= 2:
            logits = output.reshape(-1, output.shape[-1])
            loss = torch.nn.functional.cross_entropy(logits, logits.argmax(dim=-1))
        else:
            loss = output.float().pow(2).mean()
        loss.backward()
        context.progress(0.1 + 0.6 * (index + 1) / total, f"Taylor importance: sample {index + 1}/{total}")


def _layer_widths(module) -> dict[str, int]:
    from torch import nn

    widths = {}
    for name, child in module.named_modules():
        if isinstance(child, nn.Linear):
            widths[name] = child.out_features
        elif isinstance(child, nn.modules.conv._ConvNd):
            widths[name] = child.out_channels
    return widths
