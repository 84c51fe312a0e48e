"""The `metric.threshold` event: a webhook's rule on one per-epoch metric of its owner's jobs, and the event
recorded the first time a job's epoch meets it.

1. A webhook that subscribes to `metric.threshold` holds a threshold `{"metric", "op", "value"}`, e.g.
   `val_accuracy >= 0.9`; no other webhook holds one (the API refuses both mismatches).
2. A worker reads the job owner's threshold webhooks at the job's start, and again at most every
   `webhook_threshold_refresh_seconds`, leaving out those that already have this job's event.
3. After an epoch's row is written, each of them whose metric the epoch meets is sent one event. The
   delivery row carries the job's id under a unique index with the webhook's, and is inserted or ignored,
   so a webhook has at most one such event per job, whichever worker runs it and however often.
4. The event is written after the epoch, in a transaction of its own (the epoch's write is the hot path):
   a worker lost between the two writes leaves the event to the next epoch that still meets the threshold,
   and a job that ends on that epoch has none.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from core.db.models import Webhook, WebhookDelivery
from core.spec.job import CLASSIFICATION_METRICS, COMMON_METRICS, REGRESSION_METRICS

Op = Literal[">=", ">", "<=", "<"]
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
METRICS = COMMON_METRICS + CLASSIFICATION_METRICS + REGRESSION_METRICS  # every per-epoch metric, of either task
WRITTEN = re.compile(r"^\s*(?P<metric>\w+)\s*(?P<op>>=|<=|>|<)\s*(?P<value>\S+)\s*$")


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: Op
    value: float

    def met_by(self, observed: float | None) -> bool:
        """Whether an epoch's value meets it; a missing or non-finite value never does."""
        return observed is not None and math.isfinite(observed) and OPS[self.op](observed, self.value)

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "op": self.op, "value": self.value}


def parse(written: str) -> dict[str, Any]:
    """`val_accuracy>=0.9` as the API's `threshold` object. A ValueError says what is wrong."""
    match = WRITTEN.match(written)
    if match is None:
        ops = ", ".join(get_args(Op))
        raise ValueError(f"`{written}` is not METRIC OP VALUE, e.g. val_accuracy>=0.9 (OP one of {ops})")
    try:
        value = float(match["value"])
    except ValueError:
        raise ValueError(f"`{match['value']}` in `{written}` is not a number") from None
    return {"metric": match["metric"], "op": match["op"], "value": value}


@dataclass(frozen=True)
class Watched:
    webhook_id: str
    threshold: Threshold


def watched(session: Session, owner: str, job_id: str) -> list[Watched]:
    """The owner's threshold webhooks that have no event of this job yet (steps 1 and 2)."""
    sent = exists().where(WebhookDelivery.webhook_id == Webhook.id, WebhookDelivery.job_id == job_id)
    query = select(Webhook.id, Webhook.threshold).where(Webhook.owner == owner, Webhook.threshold.is_not(None), ~sent)
    rows: Sequence[Any] = session.execute(query).all()
    return [Watched(webhook_id, Threshold(**threshold)) for webhook_id, threshold in rows]
