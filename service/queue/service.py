"""What the queue API does, between the router (HTTP) and the scheduler's SQL. Reads only."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.jobs import scheduler
from core.tenants.principal import Principal
from service.queue.schemas import OwnerQueueRead, QueueRead


def read(session: Session, principal: Principal) -> QueueRead:
    """Every owner's counts for an admin; the caller's own (zeros when it has none) for anyone else, with the
    totals of all owners either way."""
    everyone = scheduler.active_per_owner(session)
    shown = [row for row in everyone if principal.sees(row.owner)]
    if not principal.admin and not shown:
        shown = [scheduler.OwnerQueue(principal.owner, 0, 0)]
    return QueueRead(
        owners=[OwnerQueueRead(owner=row.owner, queued=row.queued, running=row.running) for row in shown],
        queued=sum(row.queued for row in everyone),
        running=sum(row.running for row in everyone),
    )
