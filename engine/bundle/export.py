"""One-click deployment bundles: the model, its recipe and evidence, a report and a runnable predict.py.

    result = export_bundle(BundleRequest(model=handle, output=Path("out/bundle"), benchmark=summary),
                           render_report=renderer, cancel=event, progress=callback)
    verify_bundle(result.path, run_predict=True).text()

A bundle folder holds:

    model.onnx [+ model.onnx.data] | model.pt | model.pt2   the model in the chosen format
    recipe.json        the recipe that produced it (the default, empty recipe when nothing was optimized)
    sample_inputs.npz  the inputs the studio ran it on while exporting
    predict.py         numpy + onnxruntime (or torch) only: `python predict.py [INPUTS.npz] [-o OUTPUTS.npz]`
    README.txt         how to use it
    report.html        from `render_report(manifest)`, when the caller gives one (studio.reports.bundle_report does)
    manifest.json      schema version, sha256 of every file, IO with dims, runtime, fidelity, benchmark, tool version

It is built in a hidden folder beside the target and renamed into place only when whole (DESIGN §6), so a
failure, a cancel or a full disk leaves nothing behind; an existing target is replaced only with `force`, and
only if it is itself a bundle. A recipe, or a PyTorch source exported as ONNX, first goes through the optimizer,
whose fidelity report against the original then goes into the manifest.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.progress import Progress
from engine.backends import BackendOptions, get_backend
from engine.bundle.files import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    BundleCancelled,
    BundleError,
    BundleExistsError,
    BundleVerificationError,
    Staging,
    check_target,
    disk_error,
)
from engine.bundle.manifest import (
    SCHEMA_VERSION,
    benchmark_summary,
    build_manifest,
    finish_manifest,
    manifest_text,
    observed_specs,
    spec_dicts,
)
from engine.bundle.model import (
    FORMATS,
    PackagedModel,
    check_format,
    write_onnx,
    write_torch,
)
from engine.bundle.predict import predict_script, readme_text
from engine.bundle.signing import check_private_key, sign_bundle
from engine.bundle.verify import VerificationReport, verify_bundle
from engine.device.discovery import DeviceRunner
from engine.errors import EngineError, OptimizationCancelled, first_line
from engine.model.handle import ModelFormat, ModelHandle
from engine.model.inputs import InputRequest, PreparedInputs, prepare_inputs
from engine.model.opening import load_model
from engine.optimize.recipe import Recipe

ReportRenderer = Callable[[dict], str]
CPU_ONNX_RUNNER = DeviceRunner("onnxruntime", "CPUExecutionProvider")
OPTIMIZE_SHARE = 0.6  # of the progress bar, when the optimizer runs first

__all__ = [
    "FORMATS", "SCHEMA_VERSION", "BundleCancelled", "BundleError", "BundleExistsError", "BundleRequest",
    "BundleResult", "BundleVerificationError", "VerificationReport", "export_bundle", "verify_bundle",
]


@dataclass(frozen=True)
class BundleRequest:
    model: ModelHandle  # the model to package, as opened (or the optimized artifact)
    output: Path  # the bundle folder; with `zip`, the .zip file (".zip" is added when missing)
    format: str = "onnx"  # "onnx", or "torchscript" / "pt2" for PyTorch sources
    recipe: Recipe | None = None  # run the optimizer with this recipe first, and package its output
    produced_by: Recipe | None = None  # the recipe that already made `model` (an artifact); goes to recipe.json
    fidelity: dict | None = None  # `model`'s fidelity report against its original (FidelityReport.to_dict())
    original: dict | None = None  # the original model ({"path", "format", "sha256"}) when `model` is optimized
    runner: DeviceRunner = CPU_ONNX_RUNNER  # the intended backend, provider and provider options
    options: BackendOptions = field(default_factory=BackendOptions)
    inputs: InputRequest = field(default_factory=InputRequest)  # shapes or an .npz for the sample inputs
    benchmark: Mapping | None = None  # the source run's summary (engine.bundle.manifest.BENCHMARK_FIELDS)
    tool_version: str = "unknown"
    zip: bool = False
    force: bool = False
    sign_key: Path | None = None  # an Ed25519 private key (PEM): the bundle gets manifest.json.sig

    @property
    def target(self) -> Path:
        path = Path(self.output).expanduser().absolute()
        return path.with_name(path.name + ".zip") if self.zip and path.suffix.lower() != ".zip" else path


@dataclass(frozen=True)
class BundleResult:
    path: Path  # the bundle folder or .zip
    manifest: dict
    files: tuple[str, ...]
    size_bytes: int
    seconds: float

    @property
    def manifest_path(self) -> Path | None:
        """The manifest of a folder bundle: one file whose hash covers every file's (for an export record)."""
        return None if self.path.suffix.lower() == ".zip" else self.path / MANIFEST_NAME

    def to_dict(self) -> dict:
        return {"path": str(self.path), "files": list(self.files), "size_bytes": self.size_bytes,
                "seconds": self.seconds, "schema_version": self.manifest["schema_version"]}


def export_bundle(request: BundleRequest, *, render_report: ReportRenderer | None = None,
                  cancel: threading.Event | None = None, progress: Progress | None = None) -> BundleResult:
    """Write the bundle atomically; raises BundleError (BundleExistsError, BundleCancelled) with nothing left behind."""
    started = time.perf_counter()
    cancel = cancel or threading.Event()
    report = progress or (lambda fraction, message: None)
    target = request.target
    _check_request(request)
    check_target(target, request.force)
    try:
        with Staging(target) as staging:
            name = target.stem if request.zip else target.name
            folder = staging.root / name
            folder.mkdir()
            manifest = _build(request, folder, staging.root / "work", render_report, cancel, report)
            built = folder
            if request.zip:
                report(0.97, "zipping the bundle")
                built = staging.root / target.name
                _zip_folder(folder, built, cancel)
            _check_cancel(cancel)
            staging.commit(built, request.force)
    except OSError as error:
        raise disk_error(error, str(target)) from error
    report(1.0, f"bundle written to {target}")
    size = target.stat().st_size if request.zip else sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    written = (MANIFEST_NAME, SIGNATURE_NAME) if request.sign_key is not None else (MANIFEST_NAME,)
    return BundleResult(target, manifest, tuple(entry["path"] for entry in manifest["files"]) + written,
                        size, time.perf_counter() - started)


def _check_request(request: BundleRequest) -> None:
    check_format(request.model, request.format)
    benchmark_summary(request.benchmark)
    if request.recipe is not None and request.produced_by is not None:
        raise BundleError("give either a recipe to apply or the recipe that produced the model, not both")
    if request.recipe is not None and request.format != "onnx":
        raise BundleError(f"optimized models are ONNX: a recipe cannot produce {request.format}; use format onnx")
    if request.sign_key is not None:
        check_private_key(request.sign_key)  # before any work: a wrong key fails in a second, not after optimizing


def _build(request: BundleRequest, folder: Path, work: Path, render_report: ReportRenderer | None,
           cancel: threading.Event, report: Progress) -> dict:
    source, runner, notes = request.model, request.runner, []
    model, recipe, fidelity, original = source, request.produced_by, request.fidelity, request.original
    optimizing = request.recipe is not None or (request.format == "onnx" and source.format is not ModelFormat.ONNX)
    if request.format == "onnx" and runner.backend != "onnxruntime":
        notes.append(f"the source ran on {runner.backend}; an ONNX bundle runs on ONNX Runtime's CPU provider")
        runner = CPU_ONNX_RUNNER
    elif request.format != "onnx" and runner.backend != "torch":
        runner = DeviceRunner("torch", "cpu")
    share = OPTIMIZE_SHARE if optimizing else 0.0
    if optimizing:
        work.mkdir()
        model, recipe, fidelity = _optimize(request, runner, work, cancel, report)
        original = {"path": str(source.path), "format": source.format.value, "sha256": source.sha256}
    _check_cancel(cancel)
    report(share, "writing the model")
    if request.format == "onnx":
        packaged = write_onnx(model, folder)
        sample = _sample_inputs(load_model(folder / packaged.model_file), request.inputs)
    else:
        sample = _sample_inputs(source, request.inputs)
        packaged = write_torch(source, request.format, folder, sample.feed, cancel)
    _check_cancel(cancel)
    report(share + (1 - share) * 0.3, "running the bundled model on the sample inputs")
    bundled = load_model(folder / packaged.model_file)
    outputs = _run_once(bundled, runner, request.options, sample.feed, notes)
    np.savez(folder / "sample_inputs.npz", **sample.feed)
    recipe = recipe or request.recipe or Recipe()
    (folder / "recipe.json").write_text(recipe.to_json() + "\n", encoding="utf-8")
    script = predict_script(packaged.model_file, packaged.format, runner, request.options, sample.feed,
                            request.inputs.seed, (bundled if packaged.format == "onnx" else source).index_bounds)
    (folder / "predict.py").write_text(script, encoding="utf-8")
    manifest = build_manifest(
        bundled=bundled, source=source, bundle_format=packaged.format, model_files=packaged.files,
        inputs=_input_specs(bundled, packaged, sample), outputs=observed_specs(bundled.outputs, outputs),
        runner=runner, options=request.options,
        sample={"file": "sample_inputs.npz", **sample.to_dict()},
        recipe={"file": "recipe.json", "applied": optimizing or request.produced_by is not None,
                "settings": recipe.to_dict()},
        optimized=optimizing or request.produced_by is not None, fidelity=fidelity, original=original,
        benchmark=benchmark_summary(request.benchmark), tool_version=request.tool_version,
        notes=[*notes, *packaged.notes],
    )
    if render_report is not None:
        manifest["report"] = "report.html"
    (folder / "README.txt").write_text(readme_text(manifest), encoding="utf-8")
    _check_cancel(cancel)
    report(share + (1 - share) * 0.5, "hashing the files")
    manifest = finish_manifest(manifest, folder)  # the report lists every file but itself and the manifest
    if render_report is not None:
        _check_cancel(cancel)
        report(share + (1 - share) * 0.6, "rendering the report")
        (folder / "report.html").write_text(render_report(manifest), encoding="utf-8")
        manifest = finish_manifest(manifest, folder)
    _check_cancel(cancel)
    (folder / MANIFEST_NAME).write_text(manifest_text(manifest), encoding="utf-8")
    if request.sign_key is not None:
        sign_bundle(folder, request.sign_key)
    return manifest


def _optimize(request: BundleRequest, runner: DeviceRunner, work: Path, cancel: threading.Event,
              report: Progress) -> tuple[ModelHandle, Recipe, dict]:
    """Run the recipe (or the plain ONNX export of a PyTorch source) and return the graded result."""
    from engine.optimize.optimizer import optimize

    recipe = request.recipe or Recipe()
    try:
        result = optimize(request.model, recipe, request.inputs, work / "optimized.onnx", runner=runner,
                          threads=request.options.threads, cancel=cancel,
                          progress=lambda fraction, message: report(fraction * OPTIMIZE_SHARE, message))
    except OptimizationCancelled as error:
        raise BundleCancelled("export cancelled; nothing was written") from error
    if not result.accepted:
        budget = result.fidelity.budget
        reasons = "; ".join([*budget.violations, *budget.not_judged])
        raise BundleError(f"the optimized model was rejected, {budget.verdict} ({reasons}; "
                          f"{result.fidelity.summary()}); nothing was exported")
    return load_model(result.output_path), recipe, result.fidelity.to_dict()


def _sample_inputs(handle: ModelHandle, request: InputRequest) -> PreparedInputs:
    specs = handle.inputs
    if handle.format is not ModelFormat.ONNX and request.npz is not None:  # dtypes come from the user's file
        specs = tuple(dataclasses.replace(spec, dtype="unknown") for spec in specs)
    return prepare_inputs(specs, request, index_bounds=handle.index_bounds, dim_bounds=handle.dim_bounds)


def _run_once(handle: ModelHandle, runner: DeviceRunner, options: BackendOptions, feed: dict,
              notes: list[str]) -> dict[str, np.ndarray]:
    """One inference of the bundled model by the studio: proves it runs, and shows what it outputs."""
    backend = get_backend(runner.backend)
    try:
        backend.import_runtime()
        session = backend.create_session(backend.load(handle), runner, options)
    except EngineError as error:
        if runner.provider in ("CPUExecutionProvider", "cpu"):
            raise BundleError(f"the bundled model does not run: {first_line(error)}") from error
        notes.append(f"{runner.provider} could not start while exporting ({first_line(error)}); checked on the CPU")
        cpu = DeviceRunner(runner.backend, "CPUExecutionProvider" if runner.backend == "onnxruntime" else "cpu")
        session = backend.create_session(backend.load(handle), cpu, options)
    try:
        return session.run(feed)
    except EngineError as error:
        raise BundleError(f"the bundled model fails on the sample inputs: {first_line(error)}") from error
    finally:
        session.close()


def _input_specs(bundled: ModelHandle, packaged: PackagedModel, sample: PreparedInputs) -> list[dict]:
    return spec_dicts(bundled.inputs) if packaged.format == "onnx" else observed_specs(bundled.inputs, sample.feed)


def _zip_folder(folder: Path, archive_path: Path, cancel: threading.Event) -> None:
    """The folder under its own name inside the archive, files in sorted order."""
    with zipfile.ZipFile(archive_path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for path in sorted(folder.rglob("*")):
            _check_cancel(cancel)
            if path.is_file():
                archive.write(path, (Path(folder.name) / path.relative_to(folder)).as_posix())


def _check_cancel(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise BundleCancelled("export cancelled; nothing was written")
