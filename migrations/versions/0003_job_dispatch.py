"""when a job's message was last sent, for the reconciler

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("last_sent_at", UTCDateTime))
    op.execute("UPDATE jobs SET last_sent_at = created_at")
    op.create_index("ix_jobs_status_last_sent_at", "jobs", ["status", "last_sent_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_status_last_sent_at", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("last_sent_at")
