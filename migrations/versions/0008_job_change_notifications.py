"""NOTIFY steadyfit_jobs with the job's id when a change a client can see commits (PostgreSQL only)

API processes keep each job's ETag in memory and drop it on this notification (service/jobs/versions.py).
A trigger, rather than each writer, sends it, so no way of changing a job can forget to.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION steadyfit_job_changed() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('steadyfit_jobs', NEW.id);
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    # What an ETag is made of; a lease renewal changes neither, so it notifies nobody.
    op.execute(
        """
        CREATE TRIGGER jobs_changed AFTER UPDATE ON jobs FOR EACH ROW
        WHEN (OLD.updated_at IS DISTINCT FROM NEW.updated_at
              OR OLD.epochs_completed IS DISTINCT FROM NEW.epochs_completed
              OR OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION steadyfit_job_changed()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER jobs_changed ON jobs")
    op.execute("DROP FUNCTION steadyfit_job_changed()")
