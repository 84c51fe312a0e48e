"""a sweep's kind: a search, or a regularization path (a grid of one strength, served at /v1/paths)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="sweep"))
    op.create_index("ix_sweeps_kind_owner_created_at_id", "sweeps", ["kind", "owner", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_sweeps_kind_owner_created_at_id", table_name="sweeps")
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("kind")
