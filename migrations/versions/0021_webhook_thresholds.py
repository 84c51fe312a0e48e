"""webhooks.threshold and webhook_deliveries.job_id: the metric.threshold event, once per webhook and job

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"  # it alters the webhooks tables of 0020
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("threshold", sa.JSON(), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("job_id", sa.String(36), nullable=True))
    # Rows without a job id (every other event) never collide: NULLs are distinct in a unique index.
    op.create_index(
        "ix_webhook_deliveries_webhook_id_job_id", "webhook_deliveries", ["webhook_id", "job_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_webhook_id_job_id", "webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("job_id")
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("threshold")
