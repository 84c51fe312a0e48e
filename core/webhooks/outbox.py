"""Events become webhook deliveries in the transaction that makes them happen: a job or sweep whose state
change commits has its deliveries committed with it, and one that rolls back has none. Nothing is sent here;
a worker's delivery loop (workers/webhooks.py) sends what is pending.

The places that change a job's state call `job_events` (core/jobs/repository.py, and the sweep code that
cancels or fails trials), and a sweep's end calls `sweep_finished` (core/sweeps/repository.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import Job, Sweep, Webhook, WebhookDelivery
from core.states import DeliveryStatus, JobStatus, WebhookEvent

JOB_FIELDS = (
    Job.id,
    Job.owner,
    Job.name,
    Job.status,
    Job.stop_reason,
    Job.error,
    Job.sweep_id,
    Job.attempts,
    Job.epochs_completed,
    Job.best_epoch,
    Job.best_metrics,
    Job.test_metrics,
    Job.created_at,
    Job.started_at,
    Job.finished_at,
)
SWEEP_FIELDS = (Sweep.id, Sweep.owner, Sweep.name, Sweep.kind, Sweep.status, Sweep.created_at, Sweep.finished_at)
ENDED = {
    JobStatus.SUCCEEDED: WebhookEvent.JOB_SUCCEEDED,
    JobStatus.FAILED: WebhookEvent.JOB_FAILED,
    JobStatus.CANCELLED: WebhookEvent.JOB_CANCELLED,
}


def job_events(session: Session, job_ids: Collection[str], event: WebhookEvent) -> None:
    """Record `event` of each job, as the jobs are now in this transaction, for the webhooks of their owners."""
    if job_ids:
        rows = session.execute(select(*JOB_FIELDS).where(Job.id.in_(job_ids))).mappings()
        _record(session, event, [as_json(row) for row in rows])


def job_ended(session: Session, job_id: str, status: JobStatus) -> None:
    job_events(session, [job_id], ENDED[status])


def sweep_finished(session: Session, sweep_id: str) -> None:
    rows = session.execute(select(*SWEEP_FIELDS).where(Sweep.id == sweep_id)).mappings()
    _record(session, WebhookEvent.SWEEP_FINISHED, [as_json(row) for row in rows])


def as_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}


def _record(session: Session, event: WebhookEvent, objects: list[dict[str, Any]]) -> None:
    """One delivery of each object's event to each of its owner's webhooks that subscribes to `event`; the
    event's id is the same for all of them, and the body (`payload`) is fixed now."""
    owners = {item["owner"] for item in objects}
    if not owners:
        return
    query = select(Webhook.id, Webhook.owner, Webhook.events).where(Webhook.owner.in_(owners))
    hooks = [(hook_id, owner) for hook_id, owner, events in session.execute(query) if event in events]
    now = utcnow()
    for item in objects:
        event_id = str(uuid.uuid4())
        payload = {"id": event_id, "type": str(event), "created": now.isoformat(), "data": item}
        for hook_id, owner in hooks:
            if owner == item["owner"]:
                session.add(
                    WebhookDelivery(
                        id=str(uuid.uuid4()),
                        webhook_id=hook_id,
                        event_id=event_id,
                        event_type=str(event),
                        payload=payload,
                        status=DeliveryStatus.PENDING,
                        attempts=0,
                        attempt_log=[],
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
    session.flush()
