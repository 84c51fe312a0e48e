"""All SQL about a job's log lines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import JobLog


def append(session: Session, job_id: str, lines: Sequence[tuple[datetime, str, str, str]]) -> int:
    """Add (time, level, logger, message) lines after the job's last; returns the last one's number."""
    last = session.scalar(select(func.coalesce(func.max(JobLog.seq), 0)).where(JobLog.job_id == job_id)) or 0
    session.add_all(
        JobLog(job_id=job_id, seq=last + i, created_at=at, level=level, logger=logger, message=message)
        for i, (at, level, logger, message) in enumerate(lines, start=1)
    )
    session.flush()
    return last + len(lines)


def after(session: Session, job_id: str, seq: int, limit: int) -> Sequence[JobLog]:
    """Up to `limit` lines numbered after `seq`, in order."""
    query = select(JobLog).where(JobLog.job_id == job_id, JobLog.seq > seq).order_by(JobLog.seq).limit(limit)
    return session.scalars(query).all()
