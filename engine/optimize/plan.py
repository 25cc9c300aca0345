"""Which passes a recipe needs on this model and device, and what each will (not) do, said before anything runs.

`plan_optimization` turns a recipe into ordered steps: the pass each section's
selector picks, the passes those require (ONNX clean-up before quantization),
and the export a PyTorch source needs, in stage order (prune → low-rank → export
→ ONNX clean-up → graph → quantization), each with its config and its
expectations ("FP16 on the CPU provider is slower", "unstructured pruning gives
no speedup"). Settings that cannot run at all (pruning an ONNX file) are
collected as blocking reasons. `option_applicability` answers the same
questions per option, for a GUI that greys out what cannot work and says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.device.discovery import DeviceRunner, torch_installed
from engine.errors import OptimizationError
from engine.model.handle import ModelFormat, ModelHandle
from engine.model.torch_loader import NO_TORCH
from engine.optimize.passes import ModelTraits, OptimizationPass, registered
from engine.optimize.recipe import Recipe, option_key

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


def chosen_passes(recipe: Recipe) -> list[type[OptimizationPass]]:
    """The pass each section's selector picks ("none" picks none), in the order they run."""
    return [implementation for implementation in registered().values() if implementation.section is not None
            and getattr(getattr(recipe, implementation.section.name), implementation.section.selector)
            in implementation.choices]


def plan_optimization(handle: ModelHandle, recipe: Recipe, runner: DeviceRunner) -> OptimizationPlan:
    traits = ModelTraits.of(handle)
    blocked, notes = [], []
    is_torch = handle.format is not ModelFormat.ONNX
    chosen = chosen_passes(recipe)
    needing_module = [implementation for implementation in chosen if implementation.accepts == "torch"]
    if needing_module and (reason := module_blocker(handle)):
        what = " and ".join(implementation.section.title.lower() for implementation in needing_module)
        blocked.append(f"{what} cannot run on {handle.name}: {reason}")
    if not is_torch and not chosen:
        blocked.append("the recipe changes nothing: choose pruning, low-rank, graph optimization or quantization")
    if recipe.quantization.method == "auto" and not recipe.budget.is_set:
        notes.append("no accuracy budget given: auto quantization uses cosine ≥ 0.99")
    names = {implementation.name for implementation in chosen}
    names |= {required for implementation in chosen for required in implementation.requires}
    if is_torch:
        names.add("export_onnx")
    steps = []
    for name, implementation in registered().items():
        if name in names:
            config = recipe.config_for(implementation, runner)
            steps.append(PlannedStep(name, implementation.title, config,
                                     tuple(implementation().expectations(config, traits, runner))))
    return OptimizationPlan(tuple(steps), tuple(blocked), tuple(notes))


def option_applicability(handle: ModelHandle, runner: DeviceRunner) -> dict[str, OptionApplicability]:
    """For each pass a user can pick: can it run on this model and device, and what to expect if it does."""
    blocker = module_blocker(handle)
    traits = ModelTraits.of(handle)
    answers = {}
    for implementation in registered().values():
        if implementation.section is None:
            continue
        option = option_key(implementation)
        needs_module = implementation.accepts == "torch"
        if needs_module and blocker:
            answers[option] = OptionApplicability(option, False, blocker, ())
            continue
        if runner.backend != "onnxruntime" and not needs_module:
            answers[option] = OptionApplicability(option, False, "optimized models run in ONNX Runtime: pick an "
                                                  "onnxruntime device to time and compare them", ())
            continue
        section = implementation.section
        recipe = Recipe.from_dict({section.name: {section.selector: next(iter(implementation.choices))}})
        config = recipe.config_for(implementation, runner)
        expectations = tuple(implementation().expectations(config, traits, runner))
        answers[option] = OptionApplicability(option, True, None, expectations)
    return answers
