"""NOTIFY steadyfit_job_added with the owner's name when a job is inserted (PostgreSQL only)

API processes keep pages of the job list in memory (service/jobs/versions.py). A job's own changes already
notify its id (0008); a new job changes which jobs its owner's pages hold, so it says whose list moved.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION steadyfit_job_added() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('steadyfit_job_added', NEW.owner);
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute("CREATE TRIGGER jobs_added AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION steadyfit_job_added()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER jobs_added ON jobs")
    op.execute("DROP FUNCTION steadyfit_job_added()")
