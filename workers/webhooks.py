"""Sends webhook deliveries: a loop in each worker's main process (so in `steadyfit serve`'s worker too),
outside any request. Each round takes one due delivery (core/webhooks/repository.py: a lease, so a worker lost
mid-send leaves it to another), sends it, records the attempt, and goes on at once while more are due.

A delivery is a POST of the event as JSON with the headers `Steadyfit-Event-Id` (the same at every attempt,
for the receiver to drop repeats: delivery is at least once), `Steadyfit-Event-Type` and `Steadyfit-Signature`
(core/webhooks/signing.py). Redirects are not followed, and the receiver's body is not read.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime, timedelta
from typing import Any

import httpx

from core.db.base import utcnow
from core.db.engine import Database
from core.settings import Settings
from core.states import DeliveryStatus
from core.webhooks import repository, signing, targets
from workers.periodic import Periodic

log = logging.getLogger(__name__)
USER_AGENT = "steadyfit-webhooks"


def outcome(succeeded: bool, attempt: int, now: datetime, settings: Settings) -> tuple[DeliveryStatus, datetime]:
    """What an attempt leaves the delivery as, and when it is due again:

    1. answered 2xx: `succeeded`;
    2. else, after its `webhook_max_attempts`-th attempt: `failed`;
    3. else `pending`, due after `webhook_retry_seconds` times 2 to the number of attempts before this one,
       at most `webhook_max_retry_seconds` (10 s, 20 s, 40 s, ... by default).
    """
    if succeeded:
        return DeliveryStatus.SUCCEEDED, now
    if attempt >= settings.webhook_max_attempts:
        return DeliveryStatus.FAILED, now
    wait = min(settings.webhook_retry_seconds * 2 ** (attempt - 1), settings.webhook_max_retry_seconds)
    return DeliveryStatus.PENDING, now + timedelta(seconds=wait)


class Deliverer(Periodic):
    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__("webhook deliveries", settings.webhook_poll_seconds)
        self.database, self.settings = database, settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:webhooks"
        self.http = httpx.Client(
            timeout=httpx.Timeout(settings.webhook_timeout_seconds), follow_redirects=False, trust_env=False
        )

    def round(self) -> bool:
        """Send one due delivery; True when there was one (more may be due)."""
        with self.database.session() as session:
            claimed = repository.claim_due(
                session,
                self.worker_id,
                lease_seconds=self.settings.webhook_lease_seconds,
                max_attempts=self.settings.webhook_max_attempts,
                limit=1,
            )
            if not claimed:
                repository.fail_exhausted(session, self.settings.webhook_max_attempts)
                return False
        self.deliver(claimed[0])
        return True

    def deliver(self, delivery: repository.Claimed) -> None:
        at, started = utcnow(), time.monotonic()
        status_code, error = self.send(delivery)
        attempt: dict[str, Any] = {
            "at": at.isoformat(),
            "status_code": status_code,
            "error": error,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        status, next_attempt_at = outcome(error is None, delivery.attempt, utcnow(), self.settings)
        with self.database.session() as session:
            recorded = repository.record_attempt(session, delivery.id, self.worker_id, attempt, status, next_attempt_at)
        if not recorded:
            log.warning(
                "webhook delivery %s: no longer this worker's (its lease expired, or its webhook was deleted); "
                "this attempt is not recorded",
                delivery.id,
            )
        elif status == DeliveryStatus.FAILED:
            log.warning("webhook delivery %s failed after %d attempts: %s", delivery.id, delivery.attempt, error)

    def send(self, delivery: repository.Claimed) -> tuple[int | None, str | None]:
        """POST the delivery to its checked address; (status code, error), the error None on a 2xx."""
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        try:
            target = targets.resolve(delivery.url, allow_private=self.settings.webhook_allow_private)
            headers = {
                "Host": target.host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Steadyfit-Event-Id": delivery.event_id,
                "Steadyfit-Event-Type": str(delivery.payload["type"]),
                "Steadyfit-Signature": signing.signature(delivery.secret, int(time.time()), body),
            }
            request = self.http.build_request(
                "POST", target.pinned_url, content=body, headers=headers, extensions=_tls_name(target)
            )
            response = self.http.send(request, stream=True)
            response.close()
        except targets.UnsafeTarget as exc:
            return None, str(exc)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if response.is_success:
            return response.status_code, None
        return response.status_code, f"answered {response.status_code} {response.reason_phrase}".rstrip()

    def stop(self) -> None:
        super().stop()
        self.http.close()


def _tls_name(target: targets.Target) -> dict[str, Any]:
    """Over https, the name the certificate must be for (the URL's host, not the address connected to)."""
    return {"sni_hostname": target.url.hostname} if target.url.scheme == "https" else {}
