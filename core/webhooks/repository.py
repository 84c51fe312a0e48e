"""All SQL about webhooks and their deliveries.

A delivery is taken by one worker at a time with a lease, by one conditional UPDATE (on PostgreSQL of rows
locked with FOR UPDATE SKIP LOCKED, so that workers claiming at once take different rows without waiting on
each other). A worker lost while sending leaves its lease to expire; the delivery is then due again, its
attempt counted, and another worker sends it. An attempt's outcome counts only while its worker still holds
the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import Webhook, WebhookDelivery
from core.db.pagination import newest_first_page, owned_page
from core.states import DeliveryStatus

LOST = "the worker sending it was lost before it recorded an answer"


def add(session: Session, webhook: Webhook) -> Webhook:
    session.add(webhook)
    session.flush()
    return webhook


def get(session: Session, webhook_id: str) -> Webhook | None:
    return session.get(Webhook, webhook_id)


def list_page(
    session: Session, *, scope: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Webhook], str | None]:
    """A page of the webhooks of owner `scope` (of everyone's with None), newest first."""
    return owned_page(session, Webhook, scope, limit, cursor)


def delete(session: Session, webhook: Webhook) -> None:
    """Forget the webhook and, by the foreign key's cascade, its deliveries."""
    session.delete(webhook)
    session.flush()


def deliveries_page(
    session: Session, webhook_id: str, *, limit: int, cursor: str | None
) -> tuple[Sequence[WebhookDelivery], str | None]:
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    return newest_first_page(session, query, WebhookDelivery, limit, cursor)


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds the lease of, with what sending it needs."""

    id: str
    event_id: str
    payload: dict[str, Any]
    attempt: int  # this attempt's number, from 1
    url: str
    secret: str


def claim_due(
    session: Session, worker_id: str, *, lease_seconds: float, max_attempts: int, limit: int
) -> list[Claimed]:
    """Take up to `limit` pending deliveries whose time has come and that no live worker holds; each taken
    counts an attempt."""
    now = utcnow()
    due = (
        select(WebhookDelivery.id)
        .where(_unleased(now), WebhookDelivery.next_attempt_at <= now, WebhookDelivery.attempts < max_attempts)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(due.scalar_subquery()))
        .values(
            attempts=WebhookDelivery.attempts + 1,
            worker_id=worker_id,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
        )
        .returning(WebhookDelivery.id)
    )
    ids = [row[0] for row in claimed]
    if not ids:
        return []
    rows = session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.event_id,
            WebhookDelivery.payload,
            WebhookDelivery.attempts,
            Webhook.url,
            Webhook.secret,
        )
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(ids))
    )
    return [Claimed(*row) for row in rows]


def record_attempt(
    session: Session,
    delivery_id: str,
    worker_id: str,
    attempt: dict[str, Any],
    status: DeliveryStatus,
    next_attempt_at: datetime,
) -> bool:
    """Add the attempt to the delivery's log (after an entry for each earlier one whose worker was lost),
    move it to `status`, due again at `next_attempt_at` while pending, and release its lease. Counts only
    while `worker_id` holds the lease; returns whether it did."""
    row = session.execute(
        select(WebhookDelivery.attempts, WebhookDelivery.attempt_log).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.worker_id == worker_id
        )
    ).first()
    if row is None:
        return False
    attempts, log = row
    values: dict[str, Any] = {
        "attempt_log": [*with_lost(log, attempts - 1), attempt],
        "status": status,
        "next_attempt_at": next_attempt_at,
        "worker_id": None,
        "lease_expires_at": None,
    }
    if status != DeliveryStatus.PENDING:
        values["finished_at"] = utcnow()
    result: Any = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.worker_id == worker_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(**values)
    )
    return bool(result.rowcount)


def fail_exhausted(session: Session, max_attempts: int) -> int:
    """Fail the pending deliveries that used their last attempt on a worker that was lost. Returns how many."""
    now = utcnow()
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts, WebhookDelivery.attempt_log)
        .where(_unleased(now), WebhookDelivery.attempts >= max_attempts)
        .with_for_update(skip_locked=True)
    ).all()
    for delivery_id, attempts, log in rows:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                status=DeliveryStatus.FAILED,
                attempt_log=with_lost(log, attempts),
                worker_id=None,
                lease_expires_at=None,
                finished_at=now,
            )
        )
    return len(rows)


def with_lost(log: list[dict[str, Any]], attempts: int) -> list[dict[str, Any]]:
    """The log with an entry for each of the first `attempts` attempts that has none: their worker was lost."""
    return [*log, *({"at": None, "status_code": None, "error": LOST, "duration_ms": None},) * (attempts - len(log))]


def _unleased(now: datetime) -> Any:
    """Pending, and held by no worker (never, or by one whose lease has expired)."""
    return and_(
        WebhookDelivery.status == DeliveryStatus.PENDING,
        or_(WebhookDelivery.lease_expires_at.is_(None), WebhookDelivery.lease_expires_at < now),
    )
