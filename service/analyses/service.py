"""What the analyses API does: ask a worker for an analysis of a job, and read what it recorded. Services only
flush."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.analyses import repository
from core.db.engine import after_commit
from core.errors import Conflict, NotFound, invalid_fields
from core.queue import TaskQueue
from core.spec.analysis import OPTIONS
from core.states import AnalysisKind, JobStatus
from core.tenants.principal import Principal
from service.analyses.schemas import AnalysisCreate, AnalysisList, AnalysisRead
from service.jobs import service as jobs


def request(
    session: Session, queue: TaskQueue, job_id: str, body: AnalysisCreate, principal: Principal
) -> AnalysisRead:
    """Queue the analysis (after the commit: `queue.send_analysis`); only a succeeded job has kept weights to
    study, and any job's spec can have its learning-rate range tested."""
    job = jobs.get(session, job_id, principal)
    kind = AnalysisKind(body.kind)
    if kind != AnalysisKind.LR_RANGE and job.status != JobStatus.SUCCEEDED:
        raise Conflict(f"job `{job_id}` is {job.status}: a {kind} analysis needs a succeeded job's kept weights")
    if kind == AnalysisKind.CONFUSION and job.task != "classification":
        raise Conflict(f"job `{job_id}` is a {job.task} job: a confusion matrix needs classification")
    try:
        options = OPTIONS[kind].model_validate(body.options).model_dump(exclude_defaults=True)
    except ValidationError as exc:
        raise invalid_fields(exc, "options") from exc
    analysis = repository.request(session, job_id, kind, options)
    after_commit(session, lambda: queue.send_analysis(job_id, kind))
    return AnalysisRead.model_validate(analysis, from_attributes=True)


def read(session: Session, job_id: str, kind: AnalysisKind, principal: Principal) -> AnalysisRead:
    jobs.get(session, job_id, principal)
    analysis = repository.get(session, job_id, kind)
    if analysis is None:
        raise NotFound(f"job `{job_id}` has no {kind} analysis; POST /v1/jobs/{job_id}/analyses asks for one")
    return AnalysisRead.model_validate(analysis, from_attributes=True)


def of_job(session: Session, job_id: str, principal: Principal) -> AnalysisList:
    jobs.get(session, job_id, principal)
    items = [AnalysisRead.model_validate(a, from_attributes=True) for a in repository.of_job(session, job_id)]
    return AnalysisList(job_id=job_id, items=items)
