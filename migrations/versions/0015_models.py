"""models: weights uploaded with their architecture, or saved from a job, to start from or predict with

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.db.base import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("input_shape", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.Integer(), nullable=False),
        sa.Column("task", sa.String(16), nullable=True),
        sa.Column("class_names", sa.JSON(), nullable=True),
        sa.Column("parameters", sa.BigInteger(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(71), nullable=False),
        sa.Column("predictable", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_models_created_at_id", "models", ["created_at", "id"])
    op.create_index("ix_models_owner_created_at_id", "models", ["owner", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("models")
