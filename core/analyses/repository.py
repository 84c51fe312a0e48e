"""The analyses of jobs: requested (queued), run by a worker, and their results. Only flushes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import Analysis
from core.states import AnalysisKind, AnalysisStatus


def request(session: Session, job_id: str, kind: AnalysisKind, options: dict[str, Any]) -> Analysis:
    """Queue the analysis, replacing an earlier result of the same kind (a run with other options)."""
    analysis = session.get(Analysis, (job_id, kind))
    if analysis is None:
        analysis = Analysis(job_id=job_id, kind=kind, created_at=utcnow())
        session.add(analysis)
    analysis.status, analysis.options, analysis.result, analysis.error = AnalysisStatus.QUEUED, options, None, None
    analysis.updated_at = utcnow()
    session.flush()
    return analysis


def get(session: Session, job_id: str, kind: AnalysisKind) -> Analysis | None:
    return session.get(Analysis, (job_id, kind))


def of_job(session: Session, job_id: str) -> Sequence[Analysis]:
    return session.scalars(select(Analysis).where(Analysis.job_id == job_id).order_by(Analysis.kind)).all()


def record(
    session: Session,
    job_id: str,
    kind: AnalysisKind,
    status: AnalysisStatus,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    analysis = session.get(Analysis, (job_id, kind))
    if analysis is None:
        return  # the job was deleted meanwhile
    analysis.status, analysis.result, analysis.error, analysis.updated_at = status, result, error, utcnow()
    session.flush()


def fail_stale(session: Session, older_than: float) -> list[tuple[str, AnalysisKind]]:
    """Fail the analyses queued or running with no change for `older_than` seconds; returns them."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    stale = session.scalars(
        select(Analysis).where(
            Analysis.status.in_([AnalysisStatus.QUEUED, AnalysisStatus.RUNNING]), Analysis.updated_at < cutoff
        )
    ).all()
    for analysis in stale:
        analysis.status, analysis.updated_at = AnalysisStatus.FAILED, utcnow()
        analysis.error = f"no worker finished it within {older_than:g} s: the worker running it was lost"
    session.flush()
    return [(analysis.job_id, analysis.kind) for analysis in stale]
