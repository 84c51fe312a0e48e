"""the lease holder's column is `worker_id`: `owner` is the tenant a job belongs to

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("lease_owner", new_column_name="worker_id", existing_type=sa.String(200))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("worker_id", new_column_name="lease_owner", existing_type=sa.String(200))
