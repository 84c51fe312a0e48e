"""Events become webhook deliveries in the transaction that makes them happen: a job or sweep whose state
change commits has its deliveries committed with it, and one that rolls back has none. Nothing is sent here;
a worker's delivery loop (workers/webhooks.py) sends what is pending.

The places that change a job's state call `job_events` (core/jobs/repository.py, and the sweep code that
cancels or fails trials), and a sweep's end calls `sweep_finished` (core/sweeps/repository.py). A job's
epoch that meets a webhook's threshold is the exception: `threshold_met` is called after the epoch's own
transaction (core/webhooks/thresholds.py says why and what that costs).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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


def threshold_met(session: Session, webhook_id: str, job_id: str, met: dict[str, Any]) -> bool:
    """Record the webhook's `metric.threshold` event of the job, as the job is now, with `met` (metric, op,
    value, epoch, observed) beside its fields, unless it has one already. Returns whether it was recorded."""
    job = session.execute(select(*JOB_FIELDS).where(Job.id == job_id)).mappings().one()
    now = utcnow()
    row = _delivery(webhook_id, WebhookEvent.METRIC_THRESHOLD, {**as_json(job), **met}, now) | {"job_id": job_id}
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(WebhookDelivery).values(**row).on_conflict_do_nothing(index_elements=["webhook_id", "job_id"])
    return session.execute(statement.returning(WebhookDelivery.id)).first() is not None


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
        for hook_id, owner in hooks:
            if owner == item["owner"]:
                session.add(WebhookDelivery(**_delivery(hook_id, event, item, now, event_id)))
    session.flush()


def _delivery(
    webhook_id: str, event: WebhookEvent, data: dict[str, Any], now: datetime, event_id: str | None = None
) -> dict[str, Any]:
    """A pending delivery's columns: the event `data` to send to the webhook, due now."""
    event_id = event_id or str(uuid.uuid4())
    return {
        "id": str(uuid.uuid4()),
        "webhook_id": webhook_id,
        "event_id": event_id,
        "event_type": str(event),
        "payload": {"id": event_id, "type": str(event), "created": now.isoformat(), "data": data},
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "attempt_log": [],
        "next_attempt_at": now,
        "created_at": now,
    }
