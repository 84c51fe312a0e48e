"""jobs: a reproducibility record (spec and data hashes, the worker's environment) and rerun_of

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("spec_hash", sa.String(71), nullable=True))
        batch.add_column(sa.Column("data_hash", sa.String(71), nullable=True))
        batch.add_column(sa.Column("environment", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("rerun_of", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for column in ("rerun_of", "environment", "data_hash", "spec_hash"):
            batch.drop_column(column)
