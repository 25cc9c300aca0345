"""Helpers for the passes that edit a PyTorch module: finding layers by name, counting, running a check."""

from __future__ import annotations

import copy

import numpy as np

from engine.errors import OptimizationError, first_line
from engine.optimize.passes.base import TorchArtifact

# Attribute names that hold a module's head count, and child names of its fused or split projections.
HEAD_COUNT_ATTRIBUTES = ("num_heads", "num_attention_heads", "n_heads", "n_head")
HEAD_WIDTH_ATTRIBUTES = ("head_dim", "head_width", "head_size", "attention_head_size")
FUSED_PROJECTIONS = ("qkv", "in_proj", "c_attn", "query_key_value", "Wqkv")
SPLIT_PROJECTIONS = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"), ("q", "k", "v"))


def copied(artifact: TorchArtifact):
    """A private copy of the module, so a failed pass leaves the previous step's module untouched."""
    return copy.deepcopy(artifact.module)


def example_tensors(artifact: TorchArtifact) -> tuple:
    import torch

    return tuple(torch.from_numpy(np.ascontiguousarray(artifact.example_feed[name])) for name in artifact.input_names)


def parameter_count(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def resolve_layers(module, names: list[str] | tuple[str, ...], option: str) -> list:
    """The submodules named in `names` (none for an empty list), or a clear error listing the names that exist."""
    named = dict(module.named_modules())
    missing = [name for name in names if name not in named]
    if missing:
        leaves = [n for n, m in module.named_modules() if n and not list(m.children())]
        sample = ", ".join(leaves[:12]) + (", …" if len(leaves) > 12 else "")
        raise OptimizationError(f"{option}: the model has no layer(s) {missing}; its layers include: {sample}")
    return [named[name] for name in names]


def output_layer(module):
    """The last Linear or Conv layer: by default kept whole, since its outputs are the model's outputs."""
    from torch import nn

    last = None
    for child in module.modules():
        if isinstance(child, (nn.Linear, nn.modules.conv._ConvNd)):
            last = child
    return last


def layer_name(module, layer) -> str:
    return next((name for name, child in module.named_modules() if child is layer), "?")


def attention_projections(module) -> list[tuple[object, str, list]]:
    """(attention module, head-count attribute, projection Linears) for each attention block found."""
    from torch import nn

    found = []
    for child in module.modules():
        attribute = next((a for a in HEAD_COUNT_ATTRIBUTES if isinstance(getattr(child, a, None), int)), None)
        if attribute is None:
            continue
        fused = [getattr(child, n) for n in FUSED_PROJECTIONS if isinstance(getattr(child, n, None), nn.Linear)]
        if fused:
            found.append((child, attribute, fused[:1]))
            continue
        for names in SPLIT_PROJECTIONS:
            layers = [getattr(child, n, None) for n in names]
            if all(isinstance(layer, nn.Linear) for layer in layers):
                found.append((child, attribute, layers))
                break
    return found


def check_runs(module, artifact: TorchArtifact, what: str, hint: str = ""):
    """Run the edited module once; a forward() that hard-codes sizes fails here, not later in export."""
    import torch

    module.eval()
    try:
        with torch.no_grad():
            return module(*example_tensors(artifact))
    except (RuntimeError, ValueError, IndexError, TypeError) as error:
        raise OptimizationError(
            f"after {what} the model no longer runs: {first_line(error)}; "
            f"its forward() may compute sizes that the edit changed{hint}"
        ) from error


def set_head_widths(owner, heads: int, projections: list) -> None:
    """Keep head width attributes in step with the pruned projections."""
    for attribute in HEAD_WIDTH_ATTRIBUTES:
        if isinstance(getattr(owner, attribute, None), int):
            per_projection = projections[0].out_features // (3 if len(projections) == 1 else 1)
            setattr(owner, attribute, per_projection // max(heads, 1))
