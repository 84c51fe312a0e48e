"""hyperparameter sweeps, whose trials are jobs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("scheduled_at", UTCDateTime),
    )
    op.create_index("ix_sweeps_created_at_id", "sweeps", ["created_at", "id"])
    op.create_index("ix_sweeps_status_created_at_id", "sweeps", ["status", "created_at", "id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("sweep_id", sa.String(36)))
        batch.add_column(sa.Column("trial_number", sa.Integer))
        batch.add_column(sa.Column("trial_params", sa.JSON))
        batch.add_column(sa.Column("trial_attrs", sa.JSON))
        batch.create_foreign_key("fk_jobs_sweep_id_sweeps", "sweeps", ["sweep_id"], ["id"])
    op.create_index("ix_jobs_sweep_id_trial_number", "jobs", ["sweep_id", "trial_number"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_jobs_sweep_id_trial_number", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_sweep_id_sweeps", type_="foreignkey")
        batch.drop_column("trial_attrs")
        batch.drop_column("trial_params")
        batch.drop_column("trial_number")
        batch.drop_column("sweep_id")
    op.drop_index("ix_sweeps_status_created_at_id", "sweeps")
    op.drop_index("ix_sweeps_created_at_id", "sweeps")
    op.drop_table("sweeps")
