"""Reading runs back: records with their model, filtered pages, and samples unpacked from their chunks.

These functions take an open Session so the repository decides the transaction and its retries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from storage import packing
from storage.connection import DAMAGED_KEY
from storage.records import (
    EnergyFigure,
    LatencySamples,
    RunFilter,
    RunRecord,
    StoredModel,
    TelemetrySeries,
)
from storage.schema import (
    ArtifactRow,
    LatencyChunkRow,
    ModelRow,
    RunRow,
    RunTagRow,
    TelemetryChunkRow,
)


def record_query() -> Select[tuple[RunRow, ModelRow, ArtifactRow]]:
    """Runs joined to their model: the one measured, or the parent of the artifact measured."""
    return (
        select(RunRow, ModelRow, ArtifactRow)
        .outerjoin(ArtifactRow, RunRow.artifact_id == ArtifactRow.id)
        .outerjoin(ModelRow, ModelRow.id == func.coalesce(RunRow.model_id, ArtifactRow.parent_model_id))
    )


def filtered(query: Select, run_filter: RunFilter) -> Select:
    if run_filter.model:
        needle = run_filter.model
        query = query.where(or_(ModelRow.sha256.startswith(needle.lower(), autoescape=True),
                                ModelRow.path.icontains(needle, autoescape=True)))
    if run_filter.device:
        query = query.where(func.lower(RunRow.device) == run_filter.device.lower())
    if run_filter.status:
        query = query.where(RunRow.status == run_filter.status)
    if run_filter.tag:
        query = query.where(RunRow.id.in_(select(RunTagRow.run_id).where(RunTagRow.tag == run_filter.tag)))
    if run_filter.started_after:
        query = query.where(RunRow.started_at >= run_filter.started_after)
    if run_filter.started_before:
        query = query.where(RunRow.started_at < run_filter.started_before)
    return query


def count_matching(session: Session, run_filter: RunFilter) -> int:
    query = filtered(record_query().with_only_columns(RunRow.id), run_filter)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def fetch_records(session: Session, query: Select) -> list[RunRecord]:
    rows = session.execute(query).all()
    tags = _tags_of(session, [run.id for run, _, _ in rows])
    return [_record(run, model, artifact, tags.get(run.id, ())) for run, model, artifact in rows]


def load_latency(session: Session, run_id: int) -> LatencySamples:
    chunks = session.execute(
        select(LatencyChunkRow.codec, LatencyChunkRow.count, LatencyChunkRow.timestamps,
               LatencyChunkRow.latencies, LatencyChunkRow.batches)
        .where(LatencyChunkRow.run_id == run_id).order_by(LatencyChunkRow.seq)
    ).all()
    if not chunks:
        return LatencySamples.empty()
    timestamps = [packing.unpack(c.timestamps, c.count, packing.INT64, delta=True, codec=c.codec) for c in chunks]
    latencies = [packing.unpack(c.latencies, c.count, packing.INT64, codec=c.codec) for c in chunks]
    batches = [packing.unpack(c.batches, c.count, packing.INT32, codec=c.codec) for c in chunks]
    return LatencySamples(np.concatenate(timestamps), np.concatenate(latencies), np.concatenate(batches))


def load_telemetry(session: Session, run_id: int) -> tuple[TelemetrySeries, ...]:
    chunks = session.execute(
        select(TelemetryChunkRow.metric, TelemetryChunkRow.device, TelemetryChunkRow.codec, TelemetryChunkRow.count,
               TelemetryChunkRow.timestamps, TelemetryChunkRow.values)
        .where(TelemetryChunkRow.run_id == run_id).order_by(TelemetryChunkRow.seq)
    ).all()
    parts: dict[tuple[str, str], tuple[list[np.ndarray], list[np.ndarray]]] = defaultdict(lambda: ([], []))
    for chunk in chunks:
        timestamps, values = parts[(chunk.metric, chunk.device)]
        timestamps.append(packing.unpack(chunk.timestamps, chunk.count, packing.INT64, delta=True, codec=chunk.codec))
        values.append(packing.unpack(chunk.values, chunk.count, packing.FLOAT64, codec=chunk.codec))
    return tuple(TelemetrySeries(metric, device, np.concatenate(timestamps), np.concatenate(values))
                 for (metric, device), (timestamps, values) in parts.items())


def _tags_of(session: Session, run_ids: list[int]) -> dict[int, tuple[str, ...]]:
    if not run_ids:
        return {}
    found: dict[int, list[str]] = defaultdict(list)
    for run_id, tag in session.execute(
            select(RunTagRow.run_id, RunTagRow.tag).where(RunTagRow.run_id.in_(run_ids)).order_by(RunTagRow.tag)):
        found[run_id].append(tag)
    return {run_id: tuple(tags) for run_id, tags in found.items()}


def _record(run: RunRow, model: ModelRow | None, artifact: ArtifactRow | None, tags: tuple[str, ...]) -> RunRecord:
    """The stored row as a record; a JSON field a damaged file garbled reads as empty, and the record says which
    (RunRecord.damaged), so one bad row never hides the others."""
    problems: list[str] = []

    def decoded(name: str, empty: Any) -> Any:
        value = getattr(run, name)
        if isinstance(value, dict) and set(value) == {DAMAGED_KEY}:
            problems.append(f"{name} {value[DAMAGED_KEY]}")
            return empty
        return value

    energy = decoded("energy", None) or ()
    record = RunRecord(
        id=run.id,
        status=run.status,
        device=run.device,
        backend=run.backend,
        provider=run.provider,
        provider_options=dict(decoded("provider_options", {})),
        settings=dict(decoded("settings", {})),
        model=StoredModel(model.id, model.path, model.sha256, model.format) if model is not None else None,
        artifact_id=run.artifact_id,
        artifact_path=artifact.path if artifact is not None else None,
        started_at=run.started_at,
        ended_at=run.ended_at,
        error=run.error,
        summary=decoded("summary", None),
        telemetry_summary=decoded("telemetry_summary", None),
        energy=(),
        environment=dict(decoded("environment", {})),
        host=run.host,
        tags=tags,
        notes=run.notes,
        latency_count=run.latency_count,
        telemetry_count=run.telemetry_count,
        sweep_id=run.sweep_id,
        sweep_point=run.sweep_point,
    )
    try:
        figures = tuple(EnergyFigure.from_dict(figure) for figure in energy)
    except (TypeError, KeyError, AttributeError, ValueError):
        figures, problems = (), [*problems, "energy holds figures of an unknown form"]
    return replace(record, energy=figures, damaged="; ".join(problems) or None)
