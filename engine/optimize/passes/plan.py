"""Which passes a recipe needs on this model and device, and what each will (not) do, said before anything runs.

`plan_optimization` turns a recipe into ordered steps (prune → low-rank →
export → ONNX clean-up → graph → quantization), each with its config and its
expectations ("FP16 on the CPU provider is slower", "unstructured pruning gives
no speedup"). Settings that cannot run at all (pruning an ONNX file) are
collected as blocking reasons. `option_applicability` answers the same
questions per option, for a GUI that greys out what cannot work and says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from engine.device.discovery import DeviceRunner, torch_installed
from engine.errors import OptimizationError
from engine.model.handle import ModelFormat, ModelHandle
from engine.model.torch_loader import NO_TORCH
from engine.optimize.passes.base import ModelTraits
from engine.optimize.passes.registry import get_pass
from engine.optimize.recipe import (
    GraphSettings,
    LowRankSettings,
    PruningSettings,
    QuantizationSettings,
    Recipe,
)

QUANTIZATION_PASSES = {"dynamic_int8": "dynamic_int8", "static_int8": "static_int8", "fp16": "fp16",
                       "auto": "auto_quantization"}
NO_MODULE_REASONS = {
    ModelFormat.ONNX: "an ONNX file has no PyTorch module to prune or factorize: open the model as a factory "
                      "'file.py:function' that returns the nn.Module (or a pickled nn.Module with --trust-pickle)",
    ModelFormat.TORCH_EXPORT: "a torch.export program's module is a flattened GraphModule that Torch-Pruning cannot "
                              "prune: open the model as a factory 'file.py:function' that returns the nn.Module",
    ModelFormat.TORCHSCRIPT: "a TorchScript module is compiled code that Torch-Pruning cannot edit: open the model as "
                             "a factory 'file.py:function' that returns the nn.Module",
}


@dataclass(frozen=True)
class PlannedStep:
    pass_name: str
    title: str
    config: object
    expectations: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"pass": self.pass_name, "title": self.title, "config": asdict(self.config),
                "expectations": list(self.expectations)}


@dataclass(frozen=True)
class OptimizationPlan:
    steps: tuple[PlannedStep, ...]
    blocked: tuple[str, ...]  # reasons the recipe cannot run on this model; empty when it can
    notes: tuple[str, ...]

    def raise_if_blocked(self) -> None:
        if self.blocked:
            raise OptimizationError("; ".join(self.blocked))

    def to_dict(self) -> dict:
        steps = [step.to_dict() for step in self.steps]
        return {"steps": steps, "blocked": list(self.blocked), "notes": list(self.notes)}


@dataclass(frozen=True)
class OptionApplicability:
    option: str
    available: bool
    reason: str | None  # why not, when not available
    expectations: tuple[str, ...]  # what it will and will not do here, when available

    def to_dict(self) -> dict:
        return asdict(self)


def module_blocker(handle: ModelHandle) -> str | None:
    """Why pruning and low-rank cannot run on this model, or None when they can."""
    if not torch_installed():
        return f"pruning and low-rank {NO_TORCH}"
    if handle.format is ModelFormat.TORCH_PICKLE and not handle.trusted:
        return "a pickled module is only loaded with --trust-pickle"
    return NO_MODULE_REASONS.get(handle.format)


def plan_optimization(handle: ModelHandle, recipe: Recipe, runner: DeviceRunner) -> OptimizationPlan:
    traits = ModelTraits.of(handle)
    names, blocked, notes = [], [], []
    is_torch = handle.format is not ModelFormat.ONNX
    wants_module = recipe.pruning.method != "none" or recipe.low_rank.method != "none"
    if wants_module and (reason := module_blocker(handle)):
        what = " and ".join(s for s, on in (("pruning", recipe.pruning.method != "none"),
                                            ("low-rank", recipe.low_rank.method != "none")) if on)
        blocked.append(f"{what} cannot run on {handle.name}: {reason}")
    if recipe.pruning.method != "none":
        names.append(f"{recipe.pruning.method}_pruning")
    if recipe.low_rank.method != "none":
        names.append("low_rank")
    if is_torch:
        names.append("export_onnx")
    quantization = QUANTIZATION_PASSES.get(recipe.quantization.method)
    if quantization:
        names.append("prepare_onnx")
    if recipe.graph.level != "none":
        names.append("graph_optimization")
    if quantization:
        names.append(quantization)
    if not is_torch and not wants_module and not quantization and recipe.graph.level == "none":
        blocked.append("the recipe changes nothing: choose pruning, low-rank, graph optimization or quantization")
    if recipe.quantization.method == "auto" and not recipe.budget.is_set:
        notes.append("no accuracy budget given: auto quantization uses cosine ≥ 0.99")
    steps = []
    for name in names:
        implementation = get_pass(name)
        config = implementation.config_from_recipe(recipe, runner)
        steps.append(PlannedStep(name, implementation.title, config,
                                 tuple(implementation.expectations(config, traits, runner))))
    return OptimizationPlan(tuple(steps), tuple(blocked), tuple(notes))


def option_applicability(handle: ModelHandle, runner: DeviceRunner) -> dict[str, OptionApplicability]:
    """For each option a user can pick: can it run on this model and device, and what to expect if it does."""
    blocker = module_blocker(handle)
    traits = ModelTraits.of(handle)
    base = Recipe()
    options = {
        "pruning.structured": ("structured_pruning", replace(base, pruning=PruningSettings(method="structured"))),
        "pruning.unstructured": ("unstructured_pruning", replace(base, pruning=PruningSettings(method="unstructured"))),
        "low_rank": ("low_rank", replace(base, low_rank=LowRankSettings(method="rank_ratio"))),
        "graph": ("graph_optimization", replace(base, graph=GraphSettings(level="extended"))),
    }
    for method, pass_name in QUANTIZATION_PASSES.items():
        options[f"quantization.{method}"] = (pass_name, replace(base, quantization=QuantizationSettings(method=method)))
    answers = {}
    for option, (pass_name, recipe) in options.items():
        needs_module = option.startswith(("pruning", "low_rank"))
        if needs_module and blocker:
            answers[option] = OptionApplicability(option, False, blocker, ())
            continue
        if runner.backend != "onnxruntime" and not needs_module:
            answers[option] = OptionApplicability(option, False, "optimized models run in ONNX Runtime: pick an "
                                                  "onnxruntime device to time and compare them", ())
            continue
        implementation = get_pass(pass_name)
        config = implementation.config_from_recipe(recipe, runner)
        expectations = tuple(implementation.expectations(config, traits, runner))
        answers[option] = OptionApplicability(option, True, None, expectations)
    return answers
