"""A sweep as a use case: engine.sweep's grid and analysis joined to optimization, telemetry and storage.

A sweep point is an ordinary saved run (so History, Compare and export work on it) carrying the sweep's id and
the point's key (sweep_points.py); its summary holds the engine's PointSummary, so a resumed sweep analyses the
points measured in earlier sessions from storage exactly like the ones it measures now. Each recipe is optimized
once, before its points. No Qt here: the CLI runs this in the foreground, the GUI on a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.progress import Progress
from engine.errors import EngineError, InputError, OptimizationCancelled
from engine.measure.adaptive_stopping import StoppingRule
from engine.model.handle import ModelHandle
from engine.model.inputs import InputRequest
from engine.optimize.recipe import Recipe
from engine.sweep.analysis import SweepAnalysis, analyze_sweep
from engine.sweep.grid import (
    ORIGINAL_MODEL,
    PointSummary,
    SweepGrid,
    SweepPoint,
    SweepSpec,
    run_sweep,
)
from engine.sweep.points import point_target
from profilers.sampler import DEFAULT_HZ
from storage import SweepStart
from studio import __version__
from studio.usecases.models import open_model
from studio.usecases.optimization import (
    OptimizeRequest,
    default_optimized_path,
    optimize_model,
)
from studio.usecases.recording import model_info
from studio.usecases.runs import open_store
from studio.usecases.sweep_points import measure_point_run, record_failed_point

SWEEP_SCHEMA_VERSION = 1
OPTIMIZE_SHARE = 0.2  # of the progress bar, when recipes must be optimized first


@dataclass(frozen=True)
class SweepRequest:
    """A new sweep, or (`resume`) the rest of a stored one; None fields take the defaults or the stored values."""

    model: str
    batches: tuple[int, ...] | None = None  # a new sweep defaults to (1,)
    threads: tuple[int | None, ...] | None = None  # None in the tuple: the runtime's default
    providers: tuple[str, ...] | None = None  # device ids or ONNX Runtime provider names; default ("cpu",)
    recipes: tuple[str, ...] | None = None  # recipe JSON files; the original model is always measured too
    seed: int | None = None
    stopping: StoppingRule | None = None
    latency_limit_ms: float | None = None  # analysis only: may change when resuming
    percentile: str | None = None  # analysis only: may change when resuming
    backend: str | None = None  # for the original model; optimized models run on ONNX Runtime
    inputs: InputRequest = field(default_factory=InputRequest)
    telemetry_hz: float | None = DEFAULT_HZ
    resume: int | None = None  # a stored sweep's id
    db_url: str | None = None
    notes: str = ""
    trust_pickle: bool = False


@dataclass
class SweepRecipe:
    """A recipe of the sweep: its file, and once optimized the model it made, or why it cannot be used."""

    path: str
    optimized_model: str | None = None
    artifact_id: int | None = None
    unavailable: str | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "optimized_model": self.optimized_model, "artifact_id": self.artifact_id,
                "unavailable": self.unavailable}


@dataclass(frozen=True)
class SweepReport:
    sweep_id: int
    status: str  # "completed" or "cancelled"
    model: ModelHandle
    spec: SweepSpec
    analysis: SweepAnalysis
    summaries: tuple[PointSummary, ...]  # each point's latest outcome in the seeded order, earlier sessions' too
    run_ids: dict[str, int]  # point key -> the run holding its samples
    skipped: tuple[str, ...]  # keys measured by an earlier session, not re-run
    recipes: dict[str, SweepRecipe]  # by label
    resumed: bool

    def to_dict(self) -> dict:
        """The `sweep --json` document (schema_version 1)."""
        return {"schema_version": SWEEP_SCHEMA_VERSION, "tool_version": __version__, "sweep_id": self.sweep_id,
                "status": self.status, "resumed": self.resumed, "model": self.model.to_dict(),
                "spec": self.spec.to_dict(), "recipes": {label: recipe.to_dict() for label, recipe in self.recipes.items()},
                "skipped": list(self.skipped),
                "points": [{**s.to_dict(), "run_id": self.run_ids.get(s.key)} for s in self.summaries],
                "analysis": self.analysis.to_dict()}


def parse_list(text: str, convert: Callable[[str], object], what: str) -> tuple:
    """"1,2,4" -> (1, 2, 4), for the CLI's options and the GUI's fields alike."""
    items = [item.strip() for item in text.split(",")]
    try:
        if not all(items):
            raise ValueError(text)
        return tuple(convert(item) for item in items)
    except ValueError:
        raise InputError(f"expected comma-separated {what}, got {text!r}") from None


def thread_count(text: str) -> int | None:
    """A thread count, or "default" (None) for the runtime's own choice."""
    return None if text == "default" else int(text)


def sweep_model(request: SweepRequest, cancel: threading.Event | None = None, progress: Progress | None = None,
                on_point: Callable[[PointSummary, int | None], None] | None = None) -> SweepReport:
    """Creates (or resumes) the sweep record, optimizes its recipes once, measures each pending point as a saved
    run, then stores the analysis. `on_point(summary, run_id)` is called from this thread after each point."""
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    handle = open_model(request.model, trust_pickle=request.trust_pickle)
    with open_store(request.db_url) as db:
        if request.resume is None:
            setup = _new_sweep(db, request, handle)
        else:
            setup = _resumed_sweep(db, request, handle)
        try:
            return _measure_sweep(db, request, handle, setup, cancel, report, on_point)
        except Exception as error:  # the record says how it ended, then the error reaches the user unchanged
            db.sweeps.finish_sweep(setup.sweep_id, "failed", summary={"error": f"{type(error).__name__}: {error}"})
            raise


@dataclass(frozen=True)
class _Setup:
    sweep_id: int
    spec: SweepSpec
    recipe_files: dict[str, str]  # label -> path
    inputs: InputRequest
    backend: str | None
    earlier: dict[str, tuple[PointSummary, int]]  # key -> (summary, run id) measured by earlier sessions


def _new_sweep(db, request: SweepRequest, handle: ModelHandle) -> _Setup:
    recipe_files: dict[str, str] = {}
    for path in request.recipes or ():
        label = Path(path).name
        if label in recipe_files:
            raise InputError(f"two recipes are named {label}; give the files distinct names")
        Recipe.load(path)  # a bad recipe fails before anything is stored or measured
        recipe_files[label] = str(Path(path).resolve())
    grid = SweepGrid(tuple(request.batches or (1,)), tuple(request.threads or (None,)),
                     tuple(request.providers or ("cpu",)), (ORIGINAL_MODEL, *recipe_files))
    spec = SweepSpec(grid, request.seed or 0, request.stopping or StoppingRule(), request.latency_limit_ms,
                     request.percentile or "p99")
    inputs = replace(request.inputs, seed=spec.seed)
    settings = {"spec": spec.to_dict(), "model": str(handle.path), "recipes": recipe_files,
                "backend": request.backend, "inputs": _inputs_dict(inputs)}
    model_id = db.catalog.register_model(model_info(handle))
    record = db.sweeps.create_sweep(SweepStart(settings=settings, seed=spec.seed, model_id=model_id,
                                               notes=request.notes))
    return _Setup(record.id, spec, recipe_files, inputs, request.backend, {})


def _resumed_sweep(db, request: SweepRequest, handle: ModelHandle) -> _Setup:
    """The stored spec, model and inputs; what was asked for again must match them. Refused while it runs."""
    record = db.sweeps.get_sweep(request.resume)
    if record.model is not None and record.model.sha256 != handle.sha256:
        raise InputError(f"sweep {record.id} measured {record.model.path}, not {handle.path}")
    stored = SweepSpec.from_dict(record.settings["spec"])
    asked = {"--batch": (request.batches, stored.grid.batches), "--threads": (request.threads, stored.grid.threads),
             "--providers": (request.providers, stored.grid.providers), "--seed": (request.seed, stored.seed),
             "stopping rule": (request.stopping, stored.stopping)}
    for option, (value, kept) in asked.items():
        if value is not None and (tuple(value) if isinstance(value, list | tuple) else value) != kept:
            raise InputError(f"sweep {record.id} was started with {option} {_shown(kept)}; a resumed sweep "
                             f"measures the same points: leave {option} out")
    if request.recipes is not None and sorted(Path(p).name for p in request.recipes) != sorted(
            record.settings["recipes"]):
        raise InputError(f"sweep {record.id} was started with the recipes {_shown(list(record.settings['recipes']))}; "
                         f"leave --recipes out to resume it")
    spec = replace(stored, latency_limit_ms=request.latency_limit_ms or stored.latency_limit_ms,
                   percentile=request.percentile or stored.percentile)
    db.sweeps.resume_sweep(record.id)
    done = db.sweeps.completed_points(record.id)
    runs = {run.id: run for run in db.sweeps.sweep_runs(record.id)}
    earlier = {key: (PointSummary.from_dict(runs[run_id].summary["point"]), run_id) for key, run_id in done.items()}
    return _Setup(record.id, spec, dict(record.settings["recipes"]), _inputs_from(record.settings["inputs"]),
                  record.settings.get("backend"), earlier)


def _measure_sweep(db, request: SweepRequest, handle: ModelHandle, setup: _Setup, cancel: threading.Event,
                   report: Progress, on_point) -> SweepReport:
    pending = {point.recipe for point in setup.spec.order() if point.key not in setup.earlier}
    share = OPTIMIZE_SHARE if pending - {ORIGINAL_MODEL} else 0.0
    models, recipes = _optimized_models(request, handle, setup, pending, cancel,
                                        lambda f, m: report(f * share, m))
    run_ids = {key: run_id for key, (_, run_id) in setup.earlier.items()}
    stopping = setup.spec.stopping

    def measure(point: SweepPoint, point_cancel: threading.Event, point_progress: Progress) -> PointSummary:
        recipe = recipes.get(point.recipe)  # None for the original model
        try:
            if recipe is not None and recipe.unavailable:
                raise InputError(recipe.unavailable)
            target = point_target(point, models, backend=setup.backend if point.recipe is None else None,
                                  inputs=setup.inputs)
        except EngineError as error:  # the point is stored as a failed run, then the sweep goes on
            run_ids[point.key] = record_failed_point(db, setup.sweep_id, setup.backend, point,
                                                     models.get(point.recipe, handle), str(error))
            raise
        return measure_point_run(db, setup.sweep_id, target, stopping, request.telemetry_hz, point_cancel,
                                 point_progress, run_ids, recipe.artifact_id if recipe is not None else None)

    def measured(summary: PointSummary) -> None:
        if on_point is not None:
            on_point(summary, run_ids.get(summary.key))

    result = run_sweep(setup.spec, measure, completed_keys=setup.earlier, cancel=cancel,
                       progress=lambda f, m: report(share + f * (1 - share), m), on_point=measured)
    latest = {key: summary for key, (summary, _) in setup.earlier.items()}
    latest.update((summary.key, summary) for summary in result.measured)
    summaries = tuple(latest[p.key] for p in setup.spec.order() if p.key in latest)
    analysis = analyze_sweep(summaries, latency_limit_ms=setup.spec.latency_limit_ms,
                             percentile=setup.spec.percentile)
    db.sweeps.finish_sweep(setup.sweep_id, result.status, summary={
        "analysis": analysis.to_dict(), "points": [s.to_dict() for s in summaries], "run_ids": run_ids})
    return SweepReport(setup.sweep_id, result.status, handle, setup.spec, analysis, summaries, run_ids,
                       result.skipped, recipes, request.resume is not None)


def _optimized_models(request: SweepRequest, handle: ModelHandle, setup: _Setup, pending: set, cancel, report
                      ) -> tuple[dict[str | None, ModelHandle], dict[str, SweepRecipe]]:
    """Each recipe with points still to measure, optimized once; a recipe that cannot be used says why."""
    models: dict[str | None, ModelHandle] = {ORIGINAL_MODEL: handle}
    recipes = {label: SweepRecipe(path) for label, path in setup.recipe_files.items()}
    todo = [label for label in setup.recipe_files if label in pending]
    device = next((p for p in setup.spec.grid.providers if not p.endswith("ExecutionProvider")), "cpu")
    for index, label in enumerate(todo):
        if cancel.is_set():
            break
        step = (lambda i: lambda f, m: report((i + f) / len(todo), f"optimizing with {label}: {m}"))(index)
        try:
            recipe = Recipe.load(setup.recipe_files[label])
            optimized = optimize_model(OptimizeRequest(
                model=request.model, recipe=recipe, output=str(default_optimized_path(handle, recipe)),
                inputs=setup.inputs, device=device, compare_seconds=0.0, db_url=request.db_url,
                trust_pickle=request.trust_pickle), cancel=cancel, progress=step)
        except OptimizationCancelled:
            break
        except EngineError as error:
            recipes[label].unavailable = f"recipe {label} could not be applied: {error}"
            continue
        if optimized.result.output_path is None:
            violations = "; ".join(optimized.result.fidelity.budget.violations) if optimized.result.fidelity.budget \
                else "the accuracy budget was not met"
            recipes[label].unavailable = f"recipe {label} missed its accuracy budget ({violations})"
            continue
        models[label] = open_model(str(optimized.result.output_path))
        recipes[label].optimized_model = str(optimized.result.output_path)
        recipes[label].artifact_id = optimized.artifact_id
    return models, recipes


def _inputs_dict(inputs: InputRequest) -> dict:
    return {"shapes": {name: list(shape) for name, shape in inputs.shapes.items()}, "dims": dict(inputs.dims),
            "npz": str(inputs.npz) if inputs.npz else None, "seed": inputs.seed}


def _inputs_from(values: Mapping) -> InputRequest:
    return InputRequest(shapes={name: tuple(shape) for name, shape in values["shapes"].items()},
                        dims=dict(values["dims"]), npz=Path(values["npz"]) if values["npz"] else None,
                        seed=int(values["seed"]))


def _shown(value) -> str:
    if isinstance(value, list | tuple):
        return ",".join("default" if item is None else str(item) for item in value)
    return str(value)
