"""Idempotent creation: a retried request with the same `Idempotency-Key` gets the resource it created.

The key is claimed in the request's own transaction, so it is kept only if the resource is created too;
a request that fails leaves the key free for the retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.errors import Conflict
from core.idempotency import repository
from core.settings import Settings

HEADER = "Idempotency-Key"


class Created(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=Created)


def request_hash(*parts: Any) -> str:
    """A digest of what the request asks for (its parsed body, not its bytes)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def create_once(
    session: Session,
    settings: Settings,
    *,
    owner: str,
    key: str | None,
    route: str,
    body_hash: str,
    create: Callable[[], T],
    load: Callable[[str], T],
) -> tuple[T, bool]:
    """`create()` unless `owner`'s `key` has already created a resource on `route`; then that resource, loaded.

    Returns the resource and whether it was a replay. The same key with a different body is a 409.
    """
    if key is None:
        return create(), False
    repository.forget_expired(session)
    expires_at = utcnow() + timedelta(hours=settings.idempotency_key_hours)
    if repository.claim(session, owner, key, route, body_hash, expires_at):
        resource = create()
        repository.record(session, owner, key, route, resource.id)
        return resource, False
    existing = repository.get(session, owner, key, route)
    if existing is None or existing.resource_id is None:
        raise Conflict(f"a request with this `{HEADER}` is still in progress; retry shortly")
    if existing.request_hash != body_hash:
        raise Conflict(f"this `{HEADER}` was used with a different request body; use a new key")
    return load(existing.resource_id), True
