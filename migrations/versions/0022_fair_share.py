"""fair share: priority on jobs and sweeps, each owner's highest priority and weight, the scheduler's index

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

NORMAL = "1"  # Priority.NORMAL's rank (core/db/base.py PriorityRank): what every existing job and sweep had


def upgrade() -> None:
    for table in ("jobs", "sweeps"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("priority", sa.SmallInteger(), nullable=False, server_default=NORMAL))
    with op.batch_alter_table("owner_limits") as batch:
        batch.add_column(sa.Column("max_priority", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("weight", sa.Float(), nullable=True))
    op.create_index("ix_jobs_status_priority_created_at_id", "jobs", ["status", "priority", "created_at", "id"])
    op.create_index("ix_jobs_started_at", "jobs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_started_at", table_name="jobs")
    op.drop_index("ix_jobs_status_priority_created_at_id", table_name="jobs")
    with op.batch_alter_table("owner_limits") as batch:
        batch.drop_column("weight")
        batch.drop_column("max_priority")
    for table in ("jobs", "sweeps"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("priority")
