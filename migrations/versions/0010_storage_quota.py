"""a storage quota per owner: the bytes each data set takes in the artifact store, and the owner's override

A data set stored before this revision is counted as its arrays' bytes (float32 features, int64 class
indices or float32 regression targets), which is its file in the artifact store less the header.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

datasets = sa.table(
    "datasets",
    sa.column("id", sa.String),
    sa.column("task", sa.String),
    sa.column("rows", sa.Integer),
    sa.column("feature_names", sa.JSON),
    sa.column("stored_bytes", sa.BigInteger),
)


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("stored_bytes", sa.BigInteger))
    connection = op.get_bind()
    for row in connection.execute(sa.select(datasets.c.id, datasets.c.task, datasets.c.rows, datasets.c.feature_names)):
        target_bytes = 8 if row.task == "classification" else 4
        stored = row.rows * (len(row.feature_names) * 4 + target_bytes)
        connection.execute(sa.update(datasets).where(datasets.c.id == row.id).values(stored_bytes=stored))
    with op.batch_alter_table("datasets") as batch:
        batch.alter_column("stored_bytes", existing_type=sa.BigInteger, nullable=False)
    with op.batch_alter_table("owner_limits") as batch:
        batch.add_column(sa.Column("max_storage_bytes", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("owner_limits") as batch:
        batch.drop_column("max_storage_bytes")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("stored_bytes")
