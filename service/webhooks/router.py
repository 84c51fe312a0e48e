"""HTTP routes for /v1/webhooks: URLs that are POSTed the events of their owner's jobs and sweeps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status

from core.webhooks.signing import TOLERANCE_SECONDS
from service.deps import SessionDep, SettingsDep
from service.errors import Problem
from service.tenants.deps import PrincipalDep
from service.webhooks import service
from service.webhooks.schemas import DeliveryList, WebhookCreate, WebhookCreated, WebhookList

router = APIRouter(tags=["webhooks"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No webhook with this id."}}
WebhookId = Annotated[str, Path(description="The webhook's `id`.")]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]
CREATE_DESCRIPTION = f"""Have the events of your jobs and sweeps POSTed to a URL. The answer holds the signing
secret, once.

Each delivery's body is `{{"id", "type", "created", "data"}}` (`data`: the job's or the sweep's key fields;
for `metric.threshold`, the job's with `metric`, `op`, `value`, `epoch` and `observed`),
with the headers `Steadyfit-Event-Id` (the event's id, the same at every retry: drop repeats),
`Steadyfit-Event-Type` and `Steadyfit-Signature: t=<unix time>,v1=<hex>`, where v1 is the HMAC-SHA256 of
`<t>.<body>` keyed with the secret. Refuse a `t` more than {TOLERANCE_SECONDS} seconds from your clock.
Answer 2xx; anything else (or no answer within the timeout) is retried, later each time, a bounded number
of times. Redirects are not followed."""
EXAMPLE_WEBHOOK = {"url": "https://example.com/steadyfit/events", "events": ["job.succeeded", "job.failed"]}
EXAMPLE_THRESHOLD = {
    "url": "https://example.com/steadyfit/events",
    "events": ["metric.threshold"],
    "threshold": {"metric": "val_accuracy", "op": ">=", "value": 0.9},
}


@router.post(
    "/v1/webhooks",
    status_code=status.HTTP_201_CREATED,
    operation_id="create_webhook",
    description=CREATE_DESCRIPTION,
    responses={
        422: {
            "model": Problem,
            "description": "An unknown or empty `events`, or a `url` that is not http(s) or whose host resolves to "
            "a loopback, private, link-local, multicast or reserved address; a `threshold` missing with "
            "`metric.threshold`, given without it, or naming an unknown metric or op.",
        }
    },
)
def create_webhook(
    body: Annotated[
        WebhookCreate,
        Body(
            openapi_examples={
                "job ends": {"value": EXAMPLE_WEBHOOK},
                "metric threshold": {"value": EXAMPLE_THRESHOLD},
            }
        ),
    ],
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> WebhookCreated:
    return service.create(session, settings, body, principal)


@router.get("/v1/webhooks", operation_id="list_webhooks")
def list_webhooks(
    session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None
) -> WebhookList:
    """List your webhooks (an admin: everyone's), newest first; their secrets are not shown."""
    return service.list_webhooks(session, principal, limit=limit, cursor=cursor)


@router.delete(
    "/v1/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="delete_webhook",
    responses=NOT_FOUND,
)
def delete_webhook(webhook_id: WebhookId, session: SessionDep, principal: PrincipalDep) -> None:
    """Delete a webhook and its deliveries: no more events are sent to it."""
    service.delete(session, webhook_id, principal)


@router.get("/v1/webhooks/{webhook_id}/deliveries", operation_id="list_webhook_deliveries", responses=NOT_FOUND)
def list_deliveries(
    webhook_id: WebhookId, session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None
) -> DeliveryList:
    """A webhook's deliveries, newest first: each event sent, its status and every attempt (when, the status
    code or the error, how long it took)."""
    return service.deliveries(session, webhook_id, principal, limit=limit, cursor=cursor)
