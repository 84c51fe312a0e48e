"""drop the indexes on jobs.updated_at: nothing looks jobs up by it any more

A job list's ETag is now made of the ETags of the jobs on the page, which the page's own query reads, not
of the owner's last change. Every epoch sets `updated_at`, so while it was indexed no epoch's UPDATE of its
job could be a HOT update (one that writes no index entry).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_jobs_updated_at": ["updated_at"],
    "ix_jobs_status_updated_at": ["status", "updated_at"],
    "ix_jobs_owner_updated_at": ["owner", "updated_at"],
}


def upgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "jobs")


def downgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "jobs", columns)
