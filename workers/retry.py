"""Retrying database writes through an outage, so a database restart loses no epoch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_retries(action: Callable[[], T], *, what: str, give_up_after: float, first_wait: float = 0.2) -> T:
    """Run `action`, retrying connection failures with exponential backoff (capped at 5 s between tries)."""
    deadline = time.monotonic() + give_up_after
    wait = first_wait
    while True:
        try:
            return action()
        except DBAPIError as exc:
            connection_lost = exc.connection_invalidated or type(exc).__name__ == "OperationalError"
            if not connection_lost or time.monotonic() + wait > deadline:
                raise
            log.warning("%s: database unavailable (%s); retrying in %.1fs", what, type(exc).__name__, wait)
            time.sleep(wait)
            wait = min(wait * 2, 5.0)
