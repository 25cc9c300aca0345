"""Runs, samples and comparisons in SQLite or PostgreSQL through SQLAlchemy.

Independent of `engine` and `profilers`: plain values in, plain values out. Typical use::

    with open_database(url_or_none) as db:
        model_id = db.catalog.register_model(ModelInfo(path, sha256, "onnx", size))
        writer = db.runs.start_run(RunStart(device="cpu", backend="onnxruntime", model_id=model_id))
        writer.append_latency(starts_ns, latencies_ns, batches=1)      # from any thread, as often as you like
        writer.append_telemetry("power_w", "cpu", timestamps_ns, watts)
        record = writer.finish("completed", summary={...}, energy=[EnergyFigure(...)])
        db.runs.compare([record.id, other_id]).to_dict()
        db.runs.save_profile(record.id, "onnxruntime", layer_profile_dict)   # a run's per-layer profile

    A sweep is a record whose points are runs started with `RunStart(..., sweep_id=, sweep_point=key)`;
    `db.sweeps.completed_points(sweep_id)` gives the keys a resumed sweep skips.
"""

import importlib

_HOMES = {
    "Catalog": "storage.catalog",
    "ComparedRun": "storage.comparison",
    "Comparison": "storage.comparison",
    "EnergyRow": "storage.comparison",
    "PairwiseResult": "storage.comparison",
    "compare_runs": "storage.comparison",
    "Database": "storage.database",
    "default_database_path": "storage.database",
    "open_database": "storage.database",
    "resolve_database_url": "storage.database",
    "ComparisonError": "storage.errors",
    "DamagedSamplesError": "storage.errors",
    "DatabaseCorruptError": "storage.errors",
    "DatabaseFullError": "storage.errors",
    "DatabaseLockedError": "storage.errors",
    "DatabaseReadOnlyError": "storage.errors",
    "DatabaseSchemaTooNewError": "storage.errors",
    "DatabaseUnavailableError": "storage.errors",
    "ExportError": "storage.errors",
    "InvalidRequestError": "storage.errors",
    "NotAStudioDatabaseError": "storage.errors",
    "RunImportError": "storage.errors",
    "RunNotFoundError": "storage.errors",
    "import_run": "storage.importing",
    "SweepNotFoundError": "storage.errors",
    "RunStateError": "storage.errors",
    "StorageError": "storage.errors",
    "export_run_data": "storage.exporting",
    "ArtifactInfo": "storage.records",
    "EnergyFigure": "storage.records",
    "ExportedFile": "storage.records",
    "LatencySamples": "storage.records",
    "ModelInfo": "storage.records",
    "RunData": "storage.records",
    "RunFilter": "storage.records",
    "RunPage": "storage.records",
    "RunRecord": "storage.records",
    "RunStart": "storage.records",
    "StoredModel": "storage.records",
    "StoredProfile": "storage.records",
    "SweepRecord": "storage.records",
    "SweepStart": "storage.records",
    "TelemetrySeries": "storage.records",
    "move_database_aside": "storage.recovery",
    "RunRepository": "storage.runs",
    "SweepRepository": "storage.sweeps",
    "RUN_STATUSES": "storage.statuses",
    "FINISHED_STATUSES": "storage.statuses",
    "RunWriter": "storage.writer",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    """Imports a public name from its module on first use (PEP 562); SQLAlchemy loads only when needed."""
    if name not in _HOMES:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
