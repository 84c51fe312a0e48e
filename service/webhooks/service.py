"""What the webhooks API does: create (the URL checked), list, delete, and show a webhook's deliveries.
Another owner's webhook is a 404, as if it did not exist. Services only flush."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from core.db.models import Webhook, WebhookDelivery
from core.errors import InvalidSpec, NotFound, invalid_cursor_is_422
from core.settings import Settings
from core.states import DeliveryStatus, WebhookEvent
from core.tenants.principal import Principal
from core.webhooks import repository, signing, targets
from service.webhooks.schemas import DeliveryList, DeliveryRead, WebhookCreate, WebhookCreated, WebhookList, WebhookRead


def create(session: Session, settings: Settings, body: WebhookCreate, principal: Principal) -> WebhookCreated:
    """A webhook of the caller's, if its URL may receive (core/webhooks/targets.py); the answer alone has its
    secret."""
    _check_threshold(body)
    try:
        targets.resolve(body.url, allow_private=settings.webhook_allow_private)
    except targets.Unresolved:
        pass  # not refused: see core/webhooks/targets.py
    except targets.UnsafeTarget as exc:
        raise InvalidSpec("url", str(exc), "unsafe_url") from None
    webhook = repository.add(
        session,
        Webhook(
            id=str(uuid.uuid4()),
            owner=principal.owner,
            url=body.url,
            events=[str(event) for event in body.events],
            threshold=None if body.threshold is None else body.threshold.model_dump(),
            secret=signing.new_secret(),
        ),
    )
    return WebhookCreated(**WebhookRead.model_validate(webhook).model_dump(), secret=webhook.secret)


def _check_threshold(body: WebhookCreate) -> None:
    """A threshold comes with the `metric.threshold` event, and that event with a threshold."""
    subscribed = WebhookEvent.METRIC_THRESHOLD in body.events
    if subscribed and body.threshold is None:
        raise InvalidSpec("threshold", "`metric.threshold` needs a threshold: {metric, op, value}", "missing")
    if body.threshold is not None and not subscribed:
        raise InvalidSpec("threshold", "a threshold is only for the `metric.threshold` event", "unexpected")


def get(session: Session, webhook_id: str, principal: Principal) -> Webhook:
    webhook = repository.get(session, webhook_id)
    if webhook is None or not principal.sees(webhook.owner):
        raise NotFound(f"no webhook `{webhook_id}`")
    return webhook


def list_webhooks(session: Session, principal: Principal, *, limit: int, cursor: str | None) -> WebhookList:
    with invalid_cursor_is_422():
        rows, next_cursor = repository.list_page(session, scope=principal.scope, limit=limit, cursor=cursor)
    return WebhookList(items=[WebhookRead.model_validate(row) for row in rows], next_cursor=next_cursor)


def delete(session: Session, webhook_id: str, principal: Principal) -> None:
    """Forget the webhook and its deliveries; one being sent now may still arrive."""
    repository.delete(session, get(session, webhook_id, principal))


def deliveries(
    session: Session, webhook_id: str, principal: Principal, *, limit: int, cursor: str | None
) -> DeliveryList:
    get(session, webhook_id, principal)
    with invalid_cursor_is_422():
        rows, next_cursor = repository.deliveries_page(session, webhook_id, limit=limit, cursor=cursor)
    return DeliveryList(items=[delivery_read(row) for row in rows], next_cursor=next_cursor)


def delivery_read(delivery: WebhookDelivery) -> DeliveryRead:
    read = DeliveryRead.model_validate(delivery)
    return read if delivery.status == DeliveryStatus.PENDING else read.model_copy(update={"next_attempt_at": None})
