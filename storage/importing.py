"""Bringing a run exported to JSON back into a database: the file `bench` writes when saving failed (a full disk,
a locked or read-only database), or any `runs export --format json`. The run gets a new id; its samples, outcome,
summary and tags are as exported, its notes say where it came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from core import bounded_json
from storage.errors import RunImportError
from storage.exporting import JSON_FORMAT_NAME, JSON_FORMAT_VERSION
from storage.records import EnergyFigure, ModelInfo, RunRecord, RunStart
from storage.statuses import FINISHED_STATUSES

MAX_IMPORT_BYTES = 4 * 2**30  # a run of tens of millions of samples


def import_run(database, path: str | os.PathLike[str]) -> RunRecord:
    """Imports the run in `path` (a studio JSON export) into `database`; returns the new record."""
    document = _read(Path(path))
    run, latency = document["run"], document["latency"]
    status = run.get("status")
    if status not in FINISHED_STATUSES:
        raise RunImportError(f"{path}: the run is {status!r}; only finished runs ({', '.join(FINISHED_STATUSES)}) "
                             "can be imported")
    model = run.get("model") or {}
    try:
        model_id = database.catalog.register_model(ModelInfo(str(model["path"]), str(model["sha256"]),
                                                             str(model["format"]), 0))
        start = RunStart(device=str(run["device"]), backend=str(run["backend"]), model_id=model_id,
                         provider=run.get("provider"), provider_options=dict(run.get("provider_options") or {}),
                         settings=dict(run.get("settings") or {}), environment=dict(run.get("environment") or {}),
                         tags=tuple(str(tag) for tag in run.get("tags") or ()),
                         notes=_notes(run.get("notes"), path, run.get("id")))
        arrays = [np.asarray(latency[key], dtype=np.int64) for key in ("timestamp_ns", "latency_ns", "batch")]
        energy = tuple(EnergyFigure.from_dict(figure) for figure in run.get("energy") or ())
    except (KeyError, TypeError, ValueError) as error:
        raise RunImportError(f"{path}: not a complete run export ({type(error).__name__}: {error})") from None
    if not len({array.size for array in arrays}) == 1:
        raise RunImportError(f"{path}: its latency columns have different lengths")
    writer = database.runs.start_run(start)
    writer.append_latency(*arrays)
    for series in document.get("telemetry") or ():
        values = np.array([np.nan if value is None else value for value in series["values"]], dtype=np.float64)
        writer.append_telemetry(series["metric"], series["device"], np.asarray(series["timestamp_ns"], np.int64), values)
    return writer.finish(status, summary=run.get("summary"), telemetry_summary=run.get("telemetry_summary"),
                         energy=energy, error=run.get("error") or (None if status != "failed" else "unknown"))


def _read(path: Path) -> dict[str, Any]:
    try:
        document = bounded_json.read_json_file(path, max_bytes=MAX_IMPORT_BYTES)
    except bounded_json.BoundedJsonError as error:
        raise RunImportError(f"{path}: {error}") from None
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT_NAME:
        raise RunImportError(f"{path}: not a run exported by the studio (no \"format\": \"{JSON_FORMAT_NAME}\")")
    if document.get("version") != JSON_FORMAT_VERSION:
        raise RunImportError(f"{path}: export format version {document.get('version')!r}; this studio reads "
                             f"{JSON_FORMAT_VERSION}")
    if not isinstance(document.get("run"), dict) or not isinstance(document.get("latency"), dict):
        raise RunImportError(f"{path}: lacks the run or its latency samples")
    return document


def _notes(notes: Any, path: Path, original_id: Any) -> str:
    origin = f"imported from {path} (run {original_id} where it was measured)"
    return f"{notes}; {origin}" if notes else origin
