"""The optimizer's entry point: recipe in, faster ONNX model and the proof of what it kept out.

    plan = plan_optimization(handle, recipe, runner)          # what will run, and what to expect, before running
    result = optimize(handle, recipe, request, "out.onnx", cancel=event, progress=callback)
    timing = measure_before_after(result, request, threads=1)  # measured side by side, never MAC ratios

Every result is graded against an accuracy budget: the recipe's, or the
default (AccuracyBudget.default()) when it sets none. The output is written only
when every step succeeded and the budget is met; a result below its budget, or
one the fidelity inputs cannot judge (outputs ~0 or NaN on them), is rejected:
nothing is written to the output path, and the rejected model stays in the pass
cache (`optimized_path`) for inspection only. The output is written to a
temporary file and renamed, so a crash or a cancel never leaves half a model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from core.atomic_files import atomic_path
from core.progress import Progress
from engine.device.discovery import DeviceRunner
from engine.errors import CalibrationDataError, OptimizationCancelled, OptimizationError
from engine.model.handle import ModelFormat, ModelHandle
from engine.model.inputs import InputRequest, prepare_inputs
from engine.model.opening import load_model
from engine.optimize.fidelity import (
    FidelityReport,
    accuracy,
    check_budget,
    load_labelled_data,
    run_model,
    summarize_model,
)
from engine.optimize.output_metrics import compare_outputs
from engine.optimize.passes.base import (
    OnnxArtifact,
    TorchArtifact,
)
from engine.optimize.passes.cache import PassCache
from engine.optimize.passes.latency import LatencyMeasurement, measure_side_by_side
from engine.optimize.passes.model_inputs import FeedSpecs, ModelInputs, torch_feed_specs
from engine.optimize.pipeline import (
    PipelineSettings,
    StepRecord,
    model_files,
    run_pipeline,
)
from engine.optimize.plan import (
    OptimizationPlan,
    PlannedStep,
    option_applicability,
    plan_optimization,
)
from engine.optimize.recipe import Recipe
from engine.optimize.settings import AccuracyBudget

CPU_RUNNER = DeviceRunner("onnxruntime", "CPUExecutionProvider")
FIDELITY_SHARE = 0.12  # of the progress bar

__all__ = ["OptimizationResult", "measure_before_after", "optimize", "option_applicability", "plan_optimization"]


@dataclass
class OptimizationResult:
    status: str  # "completed"; "budget_not_met" or "not_judged" (rejected: nothing written to the output path)
    source: ModelHandle
    recipe: Recipe
    plan: OptimizationPlan
    steps: list[StepRecord]
    output_path: Path | None
    optimized_path: Path  # the final model in the cache, written or not
    baseline_onnx: Path  # the FP32 ONNX model the optimized one is timed against
    fidelity: FidelityReport
    inputs: dict

    @property
    def accepted(self) -> bool:
        return self.status == "completed"

    @property
    def output_size_bytes(self) -> int | None:
        return sum(p.stat().st_size for p in model_files(self.output_path)) if self.output_path else None

    @property
    def auto_report(self) -> dict | None:
        return next((s.report for s in self.steps if s.pass_name == "auto_quantization"), None)

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "source": {"path": str(self.source.path), "format": self.source.format.value, "sha256": self.source.sha256},
            "recipe": self.recipe.to_dict(),
            "plan": self.plan.to_dict(),
            "steps": [step.to_dict() for step in self.steps],
            "output": {"path": str(self.output_path) if self.output_path else None,
                       "size_bytes": self.output_size_bytes},
            "optimized_model": str(self.optimized_path),
            "baseline_onnx": str(self.baseline_onnx),
            "inputs": self.inputs,
            "fidelity": self.fidelity.to_dict(),
            "auto": self.auto_report,
        }


def optimize(
    handle: ModelHandle,
    recipe: Recipe,
    input_request: InputRequest,
    output_path: str | Path,
    *,
    runner: DeviceRunner = CPU_RUNNER,
    threads: int | None = None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    cache: PassCache | None = None,
    accuracy_data: Path | None = None,
) -> OptimizationResult:
    """Run the recipe's passes on `handle`, grade the result, and write it to `output_path` if it passes."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    output_path = _checked_output(handle, Path(output_path))
    if runner.backend != "onnxruntime":
        raise OptimizationError("optimized models are ONNX: choose a device runner with the onnxruntime backend")
    plan = plan_optimization(handle, recipe, runner)
    plan.raise_if_blocked()
    _check_data_paths(recipe, accuracy_data)
    cache = cache or PassCache()
    inputs = ModelInputs(input_request, recipe.seed, recipe.calibration)
    is_torch = handle.format is not ModelFormat.ONNX
    source_specs = torch_feed_specs(handle, input_request) if is_torch else FeedSpecs.of_handle(handle)
    settings = PipelineSettings(runner, inputs, source_specs, threads, cancel,
                                lambda f, m: report(f * (1 - FIDELITY_SHARE), m))
    if is_torch:
        source = _torch_source(handle, inputs, source_specs)
        root_key = _torch_root_key(handle, source.module)
        final, records = run_pipeline(plan.steps, source, root_key, settings, cache)
        baseline = _baseline_export(plan, source, root_key, settings, cache, records)
    else:
        final, records = run_pipeline(plan.steps, OnnxArtifact(handle.path), handle.sha256, settings, cache)
        baseline = handle.path
    if not isinstance(final, OnnxArtifact):
        raise OptimizationError("the recipe ended without an ONNX model")  # export always runs for PyTorch sources
    report(1 - FIDELITY_SHARE, "measuring fidelity against the original")
    fidelity = _fidelity(handle, final.path, baseline, recipe, inputs, runner, cancel, accuracy_data)
    if cancel.is_set():
        raise OptimizationCancelled("optimization cancelled; nothing was written")
    written = None
    if fidelity.accepted:
        _write_atomically(final.path, output_path)
        written = output_path
        fidelity = dataclasses.replace(fidelity, optimized=dataclasses.replace(fidelity.optimized, path=str(written)))
    status = "completed" if written else "budget_not_met" if fidelity.budget.violations else "not_judged"
    report(1.0, "done" if written else f"rejected ({fidelity.budget.verdict}): nothing written")
    return OptimizationResult(
        status=status, source=handle, recipe=recipe, plan=plan, steps=records,
        output_path=written, optimized_path=final.path, baseline_onnx=baseline, fidelity=fidelity,
        inputs=inputs.feed(FeedSpecs.of_onnx(final.path)).to_dict(),
    )


def measure_before_after(
    result: OptimizationResult,
    input_request: InputRequest,
    *,
    runner: DeviceRunner = CPU_RUNNER,
    threads: int | None = 1,
    seconds_each: float = 3.0,
    rounds: int = 3,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
) -> dict:
    """Median latency of the FP32 ONNX baseline and the optimized model, timed side by side in this process."""
    optimized = result.output_path or result.optimized_path
    inputs = prepare_inputs(FeedSpecs.of_onnx(optimized).specs, input_request,
                            index_bounds=FeedSpecs.of_onnx(optimized).index_bounds)
    models = {"baseline": load_model(result.baseline_onnx), "optimized": load_model(optimized)}
    measured: dict[str, LatencyMeasurement] = measure_side_by_side(
        models, inputs, runner, seconds_each=seconds_each, rounds=rounds, threads=threads, cancel=cancel,
        progress=progress)
    baseline, after = measured["baseline"], measured["optimized"]
    macs = {name: summary.macs.total if summary and summary.macs else None
            for name, summary in (("baseline", result.fidelity.original), ("optimized", result.fidelity.optimized))}
    return {
        "device": runner.to_dict(), "threads": threads, "seconds_each": seconds_each, "rounds": rounds,
        "inputs": inputs.to_dict(), "baseline": baseline.to_dict(), "optimized": after.to_dict(),
        "speedup": baseline.median_ms / after.median_ms,  # measured median latencies, never a MAC ratio
        "macs": macs,  # shown next to the measured times, to explain them
    }


def _checked_output(handle: ModelHandle, path: Path) -> Path:
    path = path.expanduser()
    if path.suffix.lower() != ".onnx":
        raise OptimizationError(f"{path}: the optimized model is ONNX; give an output path ending in .onnx")
    if not path.parent.is_dir():
        raise OptimizationError(f"{path}: the folder {path.parent} does not exist")
    if path.exists() and any(path.resolve() == f.resolve() for f in handle.files or (handle.path,)):
        raise OptimizationError(f"{path}: is the source model; choose another output path")
    return path


def _check_data_paths(recipe: Recipe, accuracy_data: Path | None) -> None:
    """Fail before any long work when a data file named by the user is missing."""
    source = recipe.calibration.source
    if source is not None and not Path(source).exists():
        raise CalibrationDataError(f"calibration data {source}: no such file or folder")
    if accuracy_data is not None and not Path(accuracy_data).is_file():
        raise CalibrationDataError(f"accuracy data {accuracy_data}: no such file")


def _torch_source(handle: ModelHandle, inputs: ModelInputs, specs: FeedSpecs) -> TorchArtifact:
    from engine.model.torch_loader import load_module

    module = load_module(handle.path, handle.format, trust_pickle=handle.trusted, function=handle.factory_function)
    example = inputs.feed(specs).feed
    return TorchArtifact(module.eval(), tuple(spec.name for spec in specs.specs), example)


def _torch_root_key(handle: ModelHandle, module) -> str:
    """The source file's sha256 and the weights themselves: a factory may load weights from elsewhere."""
    digest = hashlib.sha256(handle.sha256.encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _baseline_export(plan: OptimizationPlan, source: TorchArtifact, root_key: str, settings: PipelineSettings,
                     cache: PassCache, records: list[StepRecord]) -> Path:
    """The unmodified module exported to ONNX: the FP32 reference for latency and MACs."""
    first = plan.steps[0]
    if first.pass_name == "export_onnx":
        return records[0].output_path
    export: PlannedStep = next(step for step in plan.steps if step.pass_name == "export_onnx")
    quiet = dataclasses.replace(settings, progress=lambda f, m: None)
    artifact, _ = run_pipeline([export], source, root_key, quiet, cache)
    return artifact.path


def _fidelity(handle: ModelHandle, optimized: Path, baseline: Path, recipe: Recipe, inputs: ModelInputs,
              runner: DeviceRunner, cancel: threading.Event, accuracy_data: Path | None) -> FidelityReport:
    specs = FeedSpecs.of_onnx(optimized)
    feeds, data, synthetic = _fidelity_feeds(inputs, specs, recipe.fidelity_samples)
    optimized_handle = load_model(optimized)
    original_outputs = run_model(handle, feeds, runner, cancel)
    outputs = compare_outputs(original_outputs, run_model(optimized_handle, feeds, runner, cancel))
    budget = recipe.effective_budget if recipe.effective_budget.is_set else AccuracyBudget.default()
    shapes = {name: tuple(array.shape) for name, array in feeds[0].items()}
    task = None
    if accuracy_data is not None:
        samples, labels = load_labelled_data(Path(accuracy_data), [s.name for s in specs.specs])
        task = {
            "source": str(accuracy_data), "samples": len(labels),
            "original": accuracy(run_model(handle, samples, runner, cancel), labels),
            "optimized": accuracy(run_model(optimized_handle, samples, runner, cancel), labels),
        }
    # A PyTorch source is summarized by its FP32 ONNX export, so size and parameters compare like with like.
    reference = handle if Path(baseline) == Path(handle.path) else load_model(baseline)
    return FidelityReport(
        samples=len(feeds), outputs=outputs,
        original=summarize_model(reference, baseline, shapes),
        optimized=summarize_model(optimized_handle, optimized, shapes),
        task_accuracy=task,
        budget=check_budget(outputs, budget),
        data=data, synthetic=synthetic,
    )


def _fidelity_feeds(inputs: ModelInputs, specs: FeedSpecs, count: int) -> tuple[list[dict], str, bool]:
    """The inputs fidelity is measured on (the user's held-out samples when calibration data is given, else
    synthetic), what they are, and whether they are made up."""
    feeds = inputs.fidelity_feeds(specs, count)
    return feeds, inputs.describe_fidelity_data(len(feeds)), inputs.fidelity_is_synthetic


def _write_atomically(source: Path, target: Path) -> None:
    """Write the model under a temporary name, then rename it into place: readers never see half a model.

    A model with external weights gets its data file (named after the target) first; the model file,
    renamed last, is what makes the output appear.
    """
    with atomic_path(target) as temporary:
        if len(model_files(source)) == 1:
            shutil.copyfile(source, temporary)
        else:
            import onnx

            onnx.save_model(onnx.load(str(source)), str(temporary), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=target.name + ".data")
