"""Optimization use cases shared by the CLI and the GUI: what each option will do here, run a recipe, grade it,
time it before and after, and keep the optimized model as an artifact with its recipe and fidelity.

Only an accepted result (its accuracy budget met) is kept as an artifact, so only it can be exported; a rejected
one is timed and reported, and stays in the pass cache for inspection."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import storage
from engine.device import discovery as device_discovery
from engine.device.discovery import DeviceRunner
from engine.measure.runner import Progress
from engine.model.handle import ModelHandle
from engine.model.inputs import InputRequest
from engine.model.opening import load_model
from studio import __version__
from studio.usecases.runs import open_store

if TYPE_CHECKING:
    from engine.optimize.optimizer import OptimizationResult
    from engine.optimize.plan import OptimizationPlan
    from engine.optimize.recipe import Recipe


@dataclass(frozen=True)
class OptimizeRequest:
    model: str
    recipe: Recipe
    output: str
    inputs: InputRequest = field(default_factory=InputRequest)
    device: str = "cpu"
    threads: int | None = None
    accuracy_data: str | None = None  # .npz with inputs and labels, for task accuracy
    compare_seconds: float = 2.0  # per model and round, for the before/after latency; 0 skips it
    save: bool = True
    db_url: str | None = None
    trust_pickle: bool = False


@dataclass(frozen=True)
class OptimizeReport:
    result: OptimizationResult
    timing: dict | None  # before/after medians measured side by side in this process
    artifact_id: int | None

    def to_dict(self) -> dict:
        return {**self.result.to_dict(), "before_after": self.timing, "artifact_id": self.artifact_id,
                "tool_version": __version__}


def optimization_options(handle: ModelHandle, device: str = "cpu") -> dict:
    """Per option ("pruning.structured", "quantization.fp16", ...): whether it applies here, why not, what to expect."""
    from engine.optimize.optimizer import option_applicability

    _, runner = device_discovery.resolve(device, "onnxruntime")
    return option_applicability(handle, runner)


def default_optimized_path(handle: ModelHandle, recipe: Recipe) -> Path:
    """Where the GUI writes an optimized model: the user data folder, named by the model and the recipe's hash."""
    import hashlib

    import platformdirs

    digest = hashlib.sha256(recipe.to_canonical_json().encode()).hexdigest()[:10]
    data = os.environ.get("AUTOGLM_STUDIO_DATA") or platformdirs.user_data_dir("autoglm-studio", appauthor=False)
    folder = Path(data) / "optimized"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{handle.path.stem}-{digest}.onnx"


def plan_optimization_for(request: OptimizeRequest) -> tuple[ModelHandle, DeviceRunner, OptimizationPlan]:
    """What each step will and will not do on this model and device, said before anything runs."""
    from engine.optimize.optimizer import plan_optimization

    handle = load_model(request.model, trust_pickle=request.trust_pickle)
    _, runner = device_discovery.resolve(request.device, "onnxruntime")
    return handle, runner, plan_optimization(handle, request.recipe, runner)


def optimize_model(request: OptimizeRequest, *, cancel: threading.Event | None = None,
                   progress: Progress | None = None) -> OptimizeReport:
    from engine.optimize.optimizer import measure_before_after, optimize

    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    handle, runner, _ = plan_optimization_for(request)
    timing_share = 0.25 if request.compare_seconds else 0.0
    result = optimize(handle, request.recipe, request.inputs, request.output, runner=runner, threads=request.threads,
                      cancel=cancel, progress=lambda f, m: report(f * (1 - timing_share), m),
                      accuracy_data=Path(request.accuracy_data) if request.accuracy_data else None)
    timing = None
    if request.compare_seconds and not cancel.is_set():
        timing = measure_before_after(result, request.inputs, runner=runner, threads=request.threads or 1,
                                      seconds_each=request.compare_seconds, cancel=cancel,
                                      progress=lambda f, m: report(1 - timing_share + f * timing_share, m))
    artifact_id = _register_artifact(request, result) if request.save and result.accepted else None
    report(1.0, "optimized" if result.accepted else "rejected: the accuracy budget was not met or could not be "
                "judged; nothing written, nothing saved")
    return OptimizeReport(result, timing, artifact_id)


def _register_artifact(request: OptimizeRequest, result: OptimizationResult) -> int:
    from engine.model.handle import hash_files

    handle = result.source
    sha256, size = hash_files([result.output_path])
    with open_store(request.db_url) as db:
        model_id = db.catalog.register_model(storage.ModelInfo(
            path=str(handle.path), sha256=handle.sha256, format=handle.format.value, size_bytes=handle.size_bytes,
            io_signature={"inputs": [s.to_dict() for s in handle.inputs], "outputs": [s.to_dict() for s in handle.outputs]},
        ))
        recipe_id = db.catalog.register_recipe(result.recipe.to_canonical_json())
        return db.catalog.register_artifact(storage.ArtifactInfo(
            model_id, recipe_id, str(result.output_path), sha256, size, fidelity=result.fidelity.to_dict()))
