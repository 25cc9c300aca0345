"""The database schema as SQLAlchemy 2.0 typed ORM classes; the Alembic scripts in `storage/migrations` build it.

Samples are the bulk of the data (a million per run is normal), so they are not one row each: a run's latency and
telemetry samples are stored as compressed packed arrays in chunks (see `storage.packing`), which keeps a
million-sample run to a few megabytes and a write of it to a few dozen INSERTs.

Every change to these classes needs a new migration in `storage/migrations/versions`; a test compares the
migrated schema with these classes so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.statuses import FINISHED_STATUSES, RUN_STATUSES  # noqa: F401 (re-exported for the schema's users)

# Stable constraint names so later migrations can drop or alter constraints on every backend (SQLite included).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend: SQLite has no time zone type and would hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("storage only accepts time-zone-aware datetimes (use datetime.now(UTC))")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime}


class ModelRow(Base):
    """A model file as first opened; identified by content so a renamed file is still the same model."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(4096))
    format: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    io_signature: Mapped[dict[str, Any]]
    first_seen: Mapped[datetime]


class RecipeRow(Base):
    """An optimization recipe in canonical JSON; the hash lets equal recipes share one row."""

    __tablename__ = "recipes"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    canonical_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ArtifactRow(Base):
    """An optimized model produced from a parent model by a recipe, with its measured fidelity."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    recipe_id: Mapped[int] = mapped_column(ForeignKey("recipes.id"), index=True)
    path: Mapped[str] = mapped_column(String(4096))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    fidelity: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]


class SweepRow(Base):
    """A grid of benchmark runs (batch × threads × provider × recipe); its points are runs linked to it."""

    __tablename__ = "sweeps"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed', 'cancelled', 'failed', 'interrupted')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    settings: Mapped[dict[str, Any]]  # the grid, stopping rule, latency limit: what a resumed sweep runs again
    seed: Mapped[int] = mapped_column(BigInteger)  # shuffles the order of the points
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any] | None]  # the analysis (frontier, chosen points) when it last finished
    notes: Mapped[str] = mapped_column(Text)
    # The process running the sweep, so a sweep whose process died reads as interrupted (and resumable).
    host: Mapped[str] = mapped_column(String(255))
    writer_pid: Mapped[int | None] = mapped_column(Integer)
    writer_started: Mapped[float | None] = mapped_column(Float)
    heartbeat_at: Mapped[datetime | None]


class RunRow(Base):
    """One benchmark run: what ran where, how it ended, and who is (or was) writing it."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'completed', 'cancelled', 'failed', 'interrupted')", name="status"),
        Index("ix_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), index=True)
    artifact_id: Mapped[int | None] = mapped_column(ForeignKey("artifacts.id"), index=True)
    device: Mapped[str] = mapped_column(String(128), index=True)
    backend: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(128))
    provider_options: Mapped[dict[str, Any]]
    settings: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    summary: Mapped[dict[str, Any] | None]
    telemetry_summary: Mapped[dict[str, Any] | None]
    energy: Mapped[list[Any] | None]
    environment: Mapped[dict[str, Any]]
    host: Mapped[str] = mapped_column(String(255))
    # Identify the writing process so a later open can tell a crashed run from one still being written.
    writer_pid: Mapped[int | None] = mapped_column(Integer)
    writer_started: Mapped[float | None] = mapped_column(Float)
    heartbeat_at: Mapped[datetime | None]
    notes: Mapped[str] = mapped_column(Text)
    latency_count: Mapped[int] = mapped_column(BigInteger)
    telemetry_count: Mapped[int] = mapped_column(BigInteger)
    # A run measured as one point of a sweep, and which point (a stable key the sweep recognises on resume).
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="SET NULL"), index=True)
    sweep_point: Mapped[str | None] = mapped_column(String(1024))


class RunProfileRow(Base):
    """A run's per-layer profile (node and op-type tables, provider placement) as plain JSON, one per run."""

    __tablename__ = "run_profiles"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    runtime: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    profile: Mapped[dict[str, Any]]


class RunTagRow(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class LatencyChunkRow(Base):
    """Consecutive latency samples of one run, packed (see `storage.packing`)."""

    __tablename__ = "latency_chunks"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    codec: Mapped[int] = mapped_column(SmallInteger)
    count: Mapped[int] = mapped_column(Integer)
    timestamps: Mapped[bytes] = mapped_column(LargeBinary)
    latencies: Mapped[bytes] = mapped_column(LargeBinary)
    batches: Mapped[bytes] = mapped_column(LargeBinary)


class TelemetryChunkRow(Base):
    """Consecutive samples of one metric on one device, packed like latency chunks."""

    __tablename__ = "telemetry_chunks"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    metric: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(128))
    codec: Mapped[int] = mapped_column(SmallInteger)
    count: Mapped[int] = mapped_column(Integer)
    timestamps: Mapped[bytes] = mapped_column(LargeBinary)
    values: Mapped[bytes] = mapped_column(LargeBinary)


class ExportRow(Base):
    """A file written from a run or an artifact, with its hash so a later reader can check it is unchanged."""

    __tablename__ = "exports"
    __table_args__ = (
        CheckConstraint("run_id IS NOT NULL OR artifact_id IS NOT NULL", name="subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    artifact_id: Mapped[int | None] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(4096))
    format: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
