"""Sweeps (a grid of runs, resumable), runs linked to a sweep point, and a per-layer profile per run.

Revision ID: 0002_sweeps_profiles
Revises: 0001_initial
Create Date: 2025-02-01

Written out in full, like 0001, so it keeps building the same schema after storage/schema.py moves on. The
runs table gains its columns in batch mode: SQLite cannot add a foreign key with ALTER TABLE, so Alembic
rebuilds the table there (keeping every row and named constraint); PostgreSQL gets plain ALTERs.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_sweeps_profiles"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("writer_pid", sa.Integer(), nullable=True),
        sa.Column("writer_started", sa.Float(), nullable=True),
        sa.Column("heartbeat_at", _TIME, nullable=True),
        sa.CheckConstraint("status IN ('running', 'completed', 'cancelled', 'failed', 'interrupted')",
                           name=op.f("ck_sweeps_status")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_sweeps_model_id_models"),
        sa.PrimaryKeyConstraint("id", name="pk_sweeps"),
    )
    op.create_index("ix_sweeps_model_id", "sweeps", ["model_id"])
    op.create_index("ix_sweeps_status", "sweeps", ["status"])
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("sweep_id", sa.Integer(), nullable=True))
        runs.add_column(sa.Column("sweep_point", sa.String(1024), nullable=True))
        runs.create_foreign_key("fk_runs_sweep_id_sweeps", "sweeps", ["sweep_id"], ["id"], ondelete="SET NULL")
        runs.create_index("ix_runs_sweep_id", ["sweep_id"])
    op.create_table(
        "run_profiles",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("runtime", sa.String(32), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_profiles_run_id_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_profiles"),
    )


def downgrade() -> None:
    op.drop_table("run_profiles")
    with op.batch_alter_table("runs") as runs:
        runs.drop_index("ix_runs_sweep_id")
        runs.drop_constraint("fk_runs_sweep_id_sweeps", type_="foreignkey")
        runs.drop_column("sweep_point")
        runs.drop_column("sweep_id")
    op.drop_index("ix_sweeps_status", table_name="sweeps")
    op.drop_index("ix_sweeps_model_id", table_name="sweeps")
    op.drop_table("sweeps")
