"""What the webhooks API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.states import DeliveryStatus, WebhookEvent
from core.webhooks.thresholds import METRICS, Op


class WebhookThreshold(BaseModel):
    """When `metric.threshold` is sent: at a job's first epoch whose `metric` compares with `value` as `op` says."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"metric": "val_accuracy", "op": ">=", "value": 0.9}]}
    )

    metric: str = Field(description="A per-epoch metric, e.g. `val_accuracy` or `val_loss`.", examples=["val_accuracy"])
    op: Op = Field(description="How the epoch's value compares with `value`.", examples=[">="])
    value: float = Field(strict=True, allow_inf_nan=False, description="The value to compare with.", examples=[0.9])

    @field_validator("metric")
    @classmethod
    def _known(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"`{metric}` is not a per-epoch metric; one of: {', '.join(METRICS)}")
        return metric


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000,
        description="Where events are POSTed: an http or https URL whose host resolves only to public addresses "
        "(loopback, private, link-local, multicast and reserved ones are refused unless the server allows them).",
    )
    events: list[WebhookEvent] = Field(
        min_length=1,
        description="The events to send, at least one; `sweep.finished` is sent for any ending, and "
        "`metric.threshold` once per job, at the first epoch that meets `threshold`.",
    )
    threshold: WebhookThreshold | None = Field(
        None, description="Required with `metric.threshold`, and only with it: the metric's rule."
    )

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[WebhookEvent]) -> list[WebhookEvent]:
        return list(dict.fromkeys(events))


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The webhook's id.")
    owner: str = Field(description="Whose jobs and sweeps it is sent events of.")
    url: str = Field(description="Where events are POSTed.")
    events: list[WebhookEvent] = Field(description="The events it is sent.")
    threshold: WebhookThreshold | None = Field(description="Its `metric.threshold` rule; null without that event.")
    created_at: datetime = Field(description="When it was created.")


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="The key of each delivery's `Steadyfit-Signature` (HMAC-SHA256). Shown only in this answer."
    )


class WebhookList(BaseModel):
    items: list[WebhookRead] = Field(description="This page's webhooks, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class DeliveryAttempt(BaseModel):
    at: datetime | None = Field(description="When it was sent; null for an attempt whose worker was lost.")
    status_code: int | None = Field(description="The receiver's HTTP status; null when none came.")
    error: str | None = Field(description="Why the attempt failed (not a 2xx, a timeout, a refused address); null.")
    duration_ms: float | None = Field(description="From sending to the receiver's status line, in milliseconds.")


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The delivery's id: one event sent to one webhook.")
    event_id: str = Field(description="The event's id, sent as `Steadyfit-Event-Id` at every attempt.")
    event_type: WebhookEvent = Field(description="The event.")
    status: DeliveryStatus = Field(
        description="`pending` until the receiver answers 2xx (`succeeded`) or the attempts run out (`failed`)."
    )
    attempts: int = Field(description="Attempts so far, with the one under way.")
    attempt_log: list[DeliveryAttempt] = Field(description="Each attempt that has ended, oldest first.")
    next_attempt_at: datetime | None = Field(description="When a pending delivery is due again; null once ended.")
    payload: dict[str, Any] = Field(description="The JSON body sent: `id`, `type`, `created` and `data`.")
    created_at: datetime = Field(description="When the event happened.")
    finished_at: datetime | None = Field(description="When it succeeded or failed for good.")


class DeliveryList(BaseModel):
    items: list[DeliveryRead] = Field(description="This page's deliveries, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
