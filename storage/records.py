"""Plain values that cross the storage boundary: what callers pass in and what queries hand back.

Storage knows nothing of the engine's or the profilers' classes; `studio.usecases.benchmark` maps those onto these
dataclasses. Everything here is immutable, and `to_dict` gives JSON-ready values for the CLI's `--json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from core.latency_stats import LatencyStats
from storage.statuses import RUN_STATUSES


@dataclass(frozen=True)
class ModelInfo:
    """A model file as the engine opened it; `io_signature` holds inputs and outputs with symbolic dims."""

    path: str
    sha256: str
    format: str
    size_bytes: int
    io_signature: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactInfo:
    """An optimized model written by a recipe from a registered parent model."""

    parent_model_id: int
    recipe_id: int
    path: str
    sha256: str
    size_bytes: int
    fidelity: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunStart:
    """Everything known when a run begins; the run row is written from it before the first sample."""

    device: str
    backend: str
    model_id: int | None = None
    artifact_id: int | None = None
    provider: str | None = None
    provider_options: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    notes: str = ""
    sweep_id: int | None = None  # the sweep this run is a point of
    sweep_point: str | None = None  # the point's key within the sweep

    def __post_init__(self) -> None:
        if self.model_id is None and self.artifact_id is None:
            raise ValueError("a run measures a model or an artifact: give model_id or artifact_id")
        if not self.device or not self.backend:
            raise ValueError("a run needs a device and a backend")
        if (self.sweep_id is None) != (self.sweep_point is None):
            raise ValueError("a sweep run needs both sweep_id and sweep_point")


@dataclass(frozen=True)
class EnergyFigure:
    """Energy measured on one device, saying how; unmeasurable energy carries a reason instead of a number."""

    device: str
    source: str  # e.g. "NVML total energy counter", "RAPL energy_uj counter", "integrated power"
    joules_per_inference: float | None
    total_joules: float | None = None
    unavailable_reason: str | None = None

    def __post_init__(self) -> None:
        if self.joules_per_inference is None and not self.unavailable_reason:
            raise ValueError(f"energy on {self.device} has no value: say why it is unavailable")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EnergyFigure:
        return cls(**{key: values.get(key) for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class StoredModel:
    id: int
    path: str
    sha256: str
    format: str


@dataclass(frozen=True)
class RunRecord:
    """A run as stored, without its samples."""

    id: int
    status: str
    device: str
    backend: str
    provider: str | None
    provider_options: dict[str, Any]
    settings: dict[str, Any]
    model: StoredModel | None  # the measured model, or the artifact's parent model
    artifact_id: int | None
    artifact_path: str | None
    started_at: datetime
    ended_at: datetime | None
    error: str | None
    summary: dict[str, Any] | None
    telemetry_summary: dict[str, Any] | None
    energy: tuple[EnergyFigure, ...]
    environment: dict[str, Any]
    host: str
    tags: tuple[str, ...]
    notes: str
    latency_count: int
    telemetry_count: int
    sweep_id: int | None = None
    sweep_point: str | None = None
    damaged: str | None = None  # which stored fields could not be decoded (they read as empty); None: all could

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["started_at"] = self.started_at.isoformat()
        values["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        values["tags"] = list(self.tags)
        values["energy"] = [asdict(figure) for figure in self.energy]
        return values


@dataclass(frozen=True)
class LatencySamples:
    """Every timed iteration: start timestamp and latency in nanoseconds, and the batch it processed."""

    timestamps_ns: np.ndarray
    latencies_ns: np.ndarray
    batches: np.ndarray

    def __len__(self) -> int:
        return int(self.latencies_ns.size)

    @classmethod
    def empty(cls) -> LatencySamples:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32))

    def statistics(self) -> LatencyStats:
        """Recomputed from the raw samples, so a comparison never trusts a stale stored summary."""
        return LatencyStats.of_loop(self.timestamps_ns, self.latencies_ns, items=int(self.batches.sum(dtype=np.int64)))


@dataclass(frozen=True)
class TelemetrySeries:
    """One metric on one device over the run (e.g. "power_w" on "gpu0")."""

    metric: str
    device: str
    timestamps_ns: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class RunData:
    """A run with all its samples, loaded from the database or held in memory by a writer that could not save."""

    record: RunRecord
    latency: LatencySamples
    telemetry: tuple[TelemetrySeries, ...]


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list; every field left None matches all runs.

    `model` matches a model's sha256 prefix or any part of its path, for runs of the model and of artifacts
    made from it. Dates compare with the run's start time (aware datetimes).
    """

    model: str | None = None
    device: str | None = None
    status: str | None = None
    tag: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {self.status!r}; expected one of {', '.join(RUN_STATUSES)}")


@dataclass(frozen=True)
class RunPage:
    runs: tuple[RunRecord, ...]
    total: int  # runs matching the filter, over all pages
    offset: int
    limit: int


@dataclass(frozen=True)
class ExportedFile:
    run_id: int | None
    path: str
    format: str
    sha256: str
    size_bytes: int
    recorded: bool = True  # False when the database is read-only: the file was written, its record was not


@dataclass(frozen=True)
class SweepStart:
    """A new sweep: `settings` must hold all a resumed sweep needs to run the same points in the same order."""

    settings: dict[str, Any]
    seed: int
    model_id: int | None = None
    notes: str = ""


@dataclass(frozen=True)
class SweepRecord:
    id: int
    status: str
    model: StoredModel | None
    settings: dict[str, Any]
    seed: int
    created_at: datetime
    ended_at: datetime | None
    summary: dict[str, Any] | None
    notes: str
    host: str
    run_count: int  # runs linked to it, any status

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["created_at"] = self.created_at.isoformat()
        values["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        return values


@dataclass(frozen=True)
class StoredProfile:
    """A run's per-layer profile as the engine wrote it (plain JSON), and which runtime produced it."""

    run_id: int
    runtime: str
    created_at: datetime
    profile: dict[str, Any]
