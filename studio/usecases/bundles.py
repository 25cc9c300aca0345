"""Export as a deployment bundle, from a model file, a saved run or an optimized artifact (CLI and GUI share it)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.progress import Progress
from engine.backends import BackendOptions
from engine.bundle.export import BundleRequest, BundleResult, export_bundle
from engine.bundle.signing import new_key_pair
from engine.bundle.verify import VerificationReport, verify_bundle
from engine.device.discovery import DeviceRunner
from engine.errors import InputError
from engine.model.inputs import InputRequest
from engine.optimize.recipe import Recipe
from storage import RunData, RunFilter, StorageError
from studio import __version__
from studio.reports.bundle_report import bundle_report_renderer
from studio.usecases.models import open_model
from studio.usecases.runs import open_store

if TYPE_CHECKING:  # SQLAlchemy loads when a database is opened, not when the CLI starts
    from storage import Database

CPU_RUNNER = DeviceRunner("onnxruntime", "CPUExecutionProvider")


@dataclass(frozen=True)
class ExportRequest:
    output: str
    model: str | None = None  # exactly one of model, run_id and artifact_id
    run_id: int | None = None
    artifact_id: int | None = None
    recipe: Recipe | None = None  # optimize first, then package
    format: str = "onnx"
    zip: bool = False
    force: bool = False
    inputs: InputRequest | None = None  # None: the source run's shapes, else the model's defaults
    db_url: str | None = None
    trust_pickle: bool = False
    sign_key: str | None = None  # an Ed25519 private key (PEM) to sign the bundle with


@dataclass
class _Source:
    path: str
    run: RunData | None = None
    original_run: RunData | None = None
    produced_by: Recipe | None = None  # the recipe that made an artifact
    fidelity: dict | None = None
    parent: dict | None = None
    artifact_id: int | None = None
    options: dict = field(default_factory=dict)


def export_deployment_bundle(request: ExportRequest, *, cancel: threading.Event | None = None,
                             progress: Progress | None = None) -> BundleResult:
    sources = [value for value in (request.model, request.run_id, request.artifact_id) if value is not None]
    if len(sources) != 1:
        raise InputError("export needs exactly one of a model, --run ID or --artifact ID")
    source = _source(request)
    handle = open_model(source.path, trust_pickle=request.trust_pickle)
    run = source.run
    runner = (DeviceRunner(run.record.backend, run.record.provider or "CPUExecutionProvider",
                           dict(run.record.provider_options)) if run and run.record.backend == "onnxruntime"
              else CPU_RUNNER)
    options = BackendOptions(**{k: v for k, v in (run.record.settings if run else {}).items()
                                if k in BackendOptions.__dataclass_fields__})
    result = export_bundle(
        BundleRequest(model=handle, output=Path(request.output), format=request.format, recipe=request.recipe,
                      produced_by=source.produced_by, fidelity=source.fidelity, original=source.parent,
                      runner=runner, options=options, inputs=request.inputs or _run_inputs(run),
                      benchmark=run_summary(run) if run else None, tool_version=__version__,
                      zip=request.zip, force=request.force,
                      sign_key=Path(request.sign_key) if request.sign_key else None),
        render_report=bundle_report_renderer(run, original=source.original_run), cancel=cancel,
        progress=progress)
    if source.artifact_id is not None:
        with open_store(request.db_url) as db:  # the manifest stands for the bundle: it hashes every other file
            db.catalog.record_artifact_export(source.artifact_id, result.manifest_path or result.path, "bundle")
    return result


def verify_deployment_bundle(path: str, inputs: str | None = None, *, run_predict: bool = False,
                             public_key: str | None = None, cancel: threading.Event | None = None,
                             progress: Progress | None = None) -> VerificationReport:
    """verify-bundle: the signature (with `public_key`), every hash; with `run_predict`, predict.py in a clean
    process giving the studio's exact outputs (nothing in the bundle runs otherwise)."""
    return verify_bundle(path, inputs=Path(inputs) if inputs else None, run_predict=run_predict,
                         public_key=Path(public_key) if public_key else None, cancel=cancel, progress=progress)


def new_signing_key(path: str) -> Path:
    """A new Ed25519 key pair: `path` (private) and `path`.pub; returns the public key's path."""
    return new_key_pair(Path(path))


def _source(request: ExportRequest) -> _Source:
    if request.model is not None:
        return _Source(request.model)
    with open_store(request.db_url) as db:
        source = _Source("")
        artifact_id = request.artifact_id
        if request.run_id is not None:
            source.run = db.runs.load_run(request.run_id, telemetry=True)
            source.original_run = find_original_run(db, source.run)
            artifact_id = source.run.record.artifact_id
            record = source.run.record
            source.path = record.artifact_path or (record.model.path if record.model else "")
        if artifact_id is not None:
            artifact = db.catalog.artifact(artifact_id)
            if artifact is None:
                raise StorageError(f"There is no optimized artifact {artifact_id} in the database.")
            recipe_json = db.catalog.recipe(artifact.recipe_id)
            parent = db.catalog.model(artifact.parent_model_id)
            source.path, source.fidelity, source.artifact_id = artifact.path, artifact.fidelity, artifact_id
            source.produced_by = Recipe.from_json(recipe_json) if recipe_json else None
            source.parent = {"path": parent.path, "format": parent.format, "sha256": parent.sha256} if parent else None
    return source


def _run_inputs(run) -> InputRequest:
    """The shapes the source run measured, so the bundle's sample inputs match its benchmark."""
    shapes = ((run.record.summary or {}).get("inputs") or {}).get("shapes") if run else None
    return InputRequest(shapes={name: tuple(dims) for name, dims in shapes.items()}) if shapes else InputRequest()


def run_summary(run: RunData) -> dict:
    """A stored run as the benchmark summary a bundle's manifest keeps (engine.bundle.manifest.BENCHMARK_FIELDS)."""
    record, statistics = run.record, run.latency.statistics()
    summary = record.summary or {}
    energy = [{"device": f.device, "source": f.source, "joules_per_inference": f.joules_per_inference,
               "total_joules": f.total_joules, "unavailable_reason": f.unavailable_reason} for f in record.energy]
    measured = {f.device: f.joules_per_inference for f in record.energy if f.joules_per_inference is not None}
    return {
        "run_id": record.id, "status": record.status, "started_at": record.started_at.isoformat(),
        "device": record.device, "backend": record.backend, "provider": record.provider,
        "provider_options": record.provider_options, "samples": statistics.count,
        "batch_size": (summary.get("inputs") or {}).get("batch_size"),
        "latency_ms": {name: getattr(statistics, name) for name in
                       ("count", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")},
        "unreliable_percentiles": list(statistics.unreliable_percentiles),
        "throughput_per_s": statistics.throughput_per_s, "cold_start_ms": summary.get("cold_start_ms"),
        "energy": energy, "energy_per_inference_j": measured or None,  # per device: never summed across meters
        "environment": record.environment, "host": record.host,
        "model_sha256": record.model.sha256 if record.model else None,
        "inputs": summary.get("inputs"),  # the data it ran on (synthetic or which files) and the shapes, with why
    }


def find_original_run(db: Database, run: RunData) -> RunData | None:
    """For a run of an optimized artifact: the newest completed run of its original model on the same device."""
    record = run.record
    if record.artifact_id is None or record.model is None:
        return None
    page = db.runs.list_runs(RunFilter(model=record.model.sha256, device=record.device, status="completed"), limit=100)
    original = next((r for r in page.runs if r.artifact_id is None and r.id != record.id), None)
    return db.runs.load_run(original.id, telemetry=True) if original else None
