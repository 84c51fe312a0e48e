"""owners of jobs, data sets, sweeps and idempotency keys; API keys; per-owner limits

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OWNED = ("jobs", "datasets", "sweeps", "idempotency_keys")
# What existed before keys was created without one, by the embedded service's local owner.
LOCAL_OWNER = "local"


def upgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner", sa.String(100), nullable=False, server_default=LOCAL_OWNER))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("owner", server_default=None)
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint("pk_idempotency_keys", type_="primary")
        batch.create_primary_key("pk_idempotency_keys", ["owner", "key", "route"])
    op.create_index("ix_jobs_owner_created_at_id", "jobs", ["owner", "created_at", "id"])
    op.create_index("ix_jobs_owner_status_created_at_id", "jobs", ["owner", "status", "created_at", "id"])
    op.create_index("ix_jobs_owner_updated_at", "jobs", ["owner", "updated_at"])
    op.create_index("ix_datasets_owner_created_at_id", "datasets", ["owner", "created_at", "id"])
    op.create_index("ix_sweeps_owner_created_at_id", "sweeps", ["owner", "created_at", "id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("shown", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
    )
    op.create_table(
        "owner_limits",
        sa.Column("owner", sa.String(100), primary_key=True),
        *(
            sa.Column(name, sa.Integer)
            for name in (
                "max_queued_jobs",
                "max_running_jobs",
                "max_model_parameters",
                "max_epochs",
                "max_upload_bytes",
                "max_upload_rows",
            )
        ),
    )


def downgrade() -> None:
    op.drop_table("owner_limits")
    op.drop_table("api_keys")
    op.drop_index("ix_sweeps_owner_created_at_id", "sweeps")
    op.drop_index("ix_datasets_owner_created_at_id", "datasets")
    op.drop_index("ix_jobs_owner_updated_at", "jobs")
    op.drop_index("ix_jobs_owner_status_created_at_id", "jobs")
    op.drop_index("ix_jobs_owner_created_at_id", "jobs")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint("pk_idempotency_keys", type_="primary")
        batch.create_primary_key("pk_idempotency_keys", ["key", "route"])
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owner")
