"""Runs, samples and comparisons in SQLite or PostgreSQL through SQLAlchemy.

Independent of `engine` and `profilers`: plain values in, plain values out. Typical use::

    with open_database(url_or_none) as db:
        model_id = db.catalog.register_model(ModelInfo(path, sha256, "onnx", size))
        writer = db.runs.start_run(RunStart(device="cpu", backend="onnxruntime", model_id=model_id))
        writer.append_latency(starts_ns, latencies_ns, batches=1)      # from any thread, as often as you like
        writer.append_telemetry("power_w", "cpu", timestamps_ns, watts)
        record = writer.finish("completed", summary={...}, energy=[EnergyFigure(...)])
        db.runs.compare([record.id, other_id]).to_dict()
"""

from storage.catalog import Catalog
from storage.comparison import ComparedRun, Comparison, EnergyRow, PairwiseResult, compare_runs
from storage.database import Database, default_database_path, open_database, resolve_database_url
from storage.errors import (
    ComparisonError,
    DatabaseCorruptError,
    DatabaseFullError,
    DatabaseLockedError,
    DatabaseReadOnlyError,
    DatabaseSchemaTooNewError,
    DatabaseUnavailableError,
    ExportError,
    NotAStudioDatabaseError,
    RunNotFoundError,
    RunStateError,
    StorageError,
)
from storage.exporting import export_run_data
from storage.latency_statistics import LatencyStatistics, latency_statistics
from storage.records import (
    ArtifactInfo,
    EnergyFigure,
    ExportedFile,
    LatencySamples,
    ModelInfo,
    RunData,
    RunFilter,
    RunPage,
    RunRecord,
    RunStart,
    StoredModel,
    TelemetrySeries,
)
from storage.recovery import move_database_aside
from storage.runs import RunRepository
from storage.schema import RUN_STATUSES
from storage.writer import RunWriter

__all__ = [
    "ArtifactInfo", "Catalog", "Comparison", "ComparedRun", "ComparisonError", "Database", "DatabaseCorruptError",
    "DatabaseFullError", "DatabaseLockedError", "DatabaseReadOnlyError", "DatabaseSchemaTooNewError",
    "DatabaseUnavailableError", "EnergyFigure", "EnergyRow", "ExportError", "ExportedFile", "LatencySamples",
    "LatencyStatistics", "ModelInfo", "NotAStudioDatabaseError", "PairwiseResult", "RUN_STATUSES", "RunData",
    "RunFilter", "RunNotFoundError", "RunPage", "RunRecord", "RunRepository", "RunStart", "RunStateError",
    "RunWriter", "StorageError", "StoredModel", "TelemetrySeries", "compare_runs", "default_database_path",
    "export_run_data", "latency_statistics", "move_database_aside", "open_database", "resolve_database_url",
]
