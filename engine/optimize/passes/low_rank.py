"""Low-rank factorization: a Linear layer W (m×n) replaced by two thinner ones through its truncated SVD.

The pair costs r·(m+n) multiply-adds per row instead of m·n, so a layer is only
factorized where r < m·n/(m+n); elsewhere the factorization would add work and
the layer is left as it is, with the reason in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.optimize.params import from_recipe, names, number
from engine.optimize.passes.base import (
    LOW_RANK,
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
    parameter_count,
    resolve_layers,
)


@dataclass(frozen=True)
class LowRankConfig:
    rank_ratio: float = number(0.5, 0.0, 1.0, "kept rank / full rank, for method rank_ratio", low_open=True,
                               high_open=True, flag="--low-rank", selects="rank_ratio")
    energy: float = number(0.9, 0.0, 1.0, "kept share of the squared singular values, for method energy",
                           low_open=True)
    ignored_layers: tuple[str, ...] = names("Linear layers left whole; empty: the output layer")
    method: str = from_recipe("low_rank.method")  # "rank_ratio" or "energy"


def break_even_rank(rows: int, columns: int) -> float:
    """Below this rank the two factors need fewer multiply-adds than the full matrix."""
    return rows * columns / (rows + columns)


def chosen_rank(singular_values, config: LowRankConfig) -> int:
    full = len(singular_values)
    if config.method == "rank_ratio":
        return max(1, round(config.rank_ratio * full))
    energy = (singular_values.double() ** 2).cumsum(0)
    share = energy / energy[-1]
    return int((share < config.energy - 1e-12).sum().item()) + 1


class LowRankPass(OptimizationPass):
    name = "low_rank"
    title = "low-rank factorization"
    stage = Stage.LOW_RANK
    section = LOW_RANK
    choices = {"rank_ratio": "Keep a rank ratio", "energy": "Keep an energy share"}
    config_type = LowRankConfig
    accepts = "torch"
    weight = 0.5

    def expectations(self, config, traits: ModelTraits, runner) -> list[str]:
        kept = f"rank ratio {config.rank_ratio:g}" if config.method == "rank_ratio" else f"{config.energy:.0%} energy"
        return [f"factorizes Linear layers by SVD ({kept}) only where rank r < m·n/(m+n), so the work drops; "
                "without fine-tuning expect a fidelity loss, and small layers may gain little measured time"]

    def run(self, artifact: TorchArtifact, config: LowRankConfig, context: PassContext) -> PassOutput:
        import torch
        from torch import nn

        module = copied(artifact)
        before = parameter_count(module)
        ignored = resolve_layers(module, config.ignored_layers, "low_rank.ignored_layers")
        notes = []
        if not ignored and (last := output_layer(module)) is not None:
            ignored = [last]
            notes.append(f"left the output layer '{layer_name(module, last)}' whole")
        targets = [(name, child) for name, child in module.named_modules()
                   if isinstance(child, nn.Linear) and not any(child is i for i in ignored)]
        layers = []
        for index, (name, linear) in enumerate(targets):
            context.check_cancel()
            rows, columns = linear.weight.shape
            u, s, vh = torch.linalg.svd(linear.weight.detach().double(), full_matrices=False)
            rank = chosen_rank(s, config)
            limit = break_even_rank(rows, columns)
            entry = {"layer": name, "shape": [rows, columns], "rank": rank, "break_even_rank": limit}
            if rank >= limit:
                entry["factorized"] = False
                entry["reason"] = f"rank {rank} ≥ {limit:.1f}: two factors would cost more than the layer"
            else:
                root = s[:rank].sqrt()
                first = nn.Linear(columns, rank, bias=False)
                second = nn.Linear(rank, rows, bias=linear.bias is not None)
                with torch.no_grad():
                    first.weight.copy_((root[:, None] * vh[:rank]).float())
                    second.weight.copy_((u[:, :rank] * root[None, :]).float())
                    if linear.bias is not None:
                        second.bias.copy_(linear.bias)
                _replace(module, name, nn.Sequential(first, second).eval())
                kept = float((s[:rank] ** 2).sum() / (s ** 2).sum())
                entry.update(factorized=True, kept_energy=kept,
                             macs_per_row_before=rows * columns, macs_per_row_after=rank * (rows + columns))
            layers.append(entry)
            context.progress((index + 1) / max(len(targets), 1), f"factorized {index + 1}/{len(targets)} layers")
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        factorized = sum(1 for entry in layers if entry.get("factorized"))
        if factorized:
            check_runs(module, artifact, "low-rank factorization")
        else:
            notes.append("no layer was factorized: at this setting none would have needed less work")
        report = {"layers": layers, "factorized": factorized, "parameters_before": before,
                  "parameters_after": parameter_count(module)}
        return PassOutput(TorchArtifact(module, artifact.input_names, artifact.example_feed), report, notes)


def _replace(module, name: str, replacement) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    setattr(parent, child, replacement)
