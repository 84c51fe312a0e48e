"""HTTP routes for /v1/queue."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import SessionDep
from service.queue import service
from service.queue.schemas import EXAMPLE, QueueRead
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/queue", tags=["queue"])


@router.get("", operation_id="get_queue", responses={200: {"content": {"application/json": {"example": EXAMPLE}}}})
def get_queue(session: SessionDep, principal: PrincipalDep) -> QueueRead:
    """How many jobs wait and run: per owner (an admin sees every owner, anyone else only themselves) and in all.
    The order in which the workers take queued jobs (priority, fair share between owners, age) is in the docs;
    a job's own place is its `queue_position` (GET /v1/jobs/{job_id})."""
    return service.read(session, principal)
