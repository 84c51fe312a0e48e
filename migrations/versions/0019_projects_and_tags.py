"""jobs and sweeps: a project and tags, and the indexes that find jobs by them

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TABLES = ("jobs", "sweeps")
SPEC_INDEX = "ix_jobs_spec_jsonb"  # in core.db.models.POSTGRES_ONLY_INDEXES


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    tags_type = JSONB() if postgres else sa.JSON()
    empty = sa.text("'{}'::jsonb") if postgres else sa.text("'{}'")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("project", sa.String(64), nullable=False, server_default="default"))
            batch.add_column(sa.Column("tags", tags_type, nullable=False, server_default=empty))
    op.create_index("ix_jobs_owner_project_created_at_id", "jobs", ["owner", "project", "created_at", "id"])
    # `tags @> '{"team": "red"}'` is answered by the GIN index on PostgreSQL; SQLite's is a plain one.
    op.create_index("ix_jobs_tags", "jobs", ["tags"], postgresql_using="gin", postgresql_ops={"tags": "jsonb_path_ops"})
    if postgres:
        # A `where` with `=` is `spec::jsonb @? 'strict $.training.seed ? (@ == 7)'`, which this one answers
        # however few jobs match (about 100 bytes a job). Ranges have no index (core/jobs/search.py).
        op.execute(f"CREATE INDEX {SPEC_INDEX} ON jobs USING gin ((spec::jsonb) jsonb_path_ops)")


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {SPEC_INDEX}")
    op.drop_index("ix_jobs_tags", table_name="jobs")
    op.drop_index("ix_jobs_owner_project_created_at_id", table_name="jobs")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tags")
            batch.drop_column("project")
