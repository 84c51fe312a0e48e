"""when a job last changed in a way a client can see, for ETags

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("updated_at", UTCDateTime))
    op.execute("UPDATE jobs SET updated_at = COALESCE(finished_at, started_at, created_at)")
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("updated_at", existing_type=UTCDateTime, nullable=False)
    op.create_index("ix_jobs_status_updated_at", "jobs", ["status", "updated_at"])
    op.create_index("ix_jobs_updated_at", "jobs", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_updated_at", "jobs")
    op.drop_index("ix_jobs_status_updated_at", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("updated_at")
