"""Who a request acts for: the `Authorization: Bearer <key>` header, checked against the stored digests."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.db.engine import Database
from core.tenants import keys
from core.tenants.principal import KEYLESS, Principal
from service.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="An API key, from `steadyfit keys create --owner NAME`.")


class KeyLookup:
    """Keys looked up in the database, remembered for `ttl` seconds so a poll costs no extra query.

    Caches the answer for unknown keys too, so a client hammering with a wrong key costs one query per ttl.
    At most `max_entries` answers are kept, the least recently used dropped first: a flood of invented keys
    pushes out other invented keys, while a key in use stays. Used from the event loop only, so the table
    needs no lock; a cached key costs no thread hop either.
    """

    max_entries = 10_000

    def __init__(self, database: Database, ttl: float) -> None:
        self.database, self.ttl = database, ttl
        self._known: OrderedDict[str, tuple[float, Principal | None, bool]] = OrderedDict()

    async def principal(self, secret: str) -> Principal:
        """The key's principal; from memory when it was looked up within `ttl`, else from the database."""
        digest = keys.digest(secret)
        now = time.monotonic()
        cached = self._known.get(digest)
        if cached is None or cached[0] < now:
            cached = (now + self.ttl, *await run_in_threadpool(self._load, secret))
            self._known[digest] = cached
            if len(self._known) > self.max_entries:
                self._known.popitem(last=False)
        self._known.move_to_end(digest)
        _, principal, revoked = cached
        if principal is None:
            raise Unauthorized("unknown API key")
        if revoked:
            raise Forbidden("this API key was revoked")
        return principal

    def _load(self, secret: str) -> tuple[Principal | None, bool]:
        with self.database.session() as session:
            key = keys.find(session, secret)
            if key is None:
                return None, False
            return Principal(owner=key.owner, admin=key.admin), key.revoked_at is not None


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if request.app.state.settings.auth == "off":
        return KEYLESS
    if credentials is None:
        raise Unauthorized("this API needs a key: send `Authorization: Bearer <key>`")
    lookup: KeyLookup = request.app.state.keys
    return await lookup.principal(credentials.credentials)


async def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if not principal.admin:
        raise Forbidden("this route needs an admin's API key")
    return principal


async def require_metrics_reader(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Who may read /metrics: anyone when the server runs without keys; else `METRICS_TOKEN` or an admin's key."""
    settings = request.app.state.settings
    token = settings.metrics_token
    if settings.auth == "off" or (
        credentials is not None
        and token is not None
        and secrets.compare_digest(credentials.credentials.encode(), token.get_secret_value().encode())
    ):
        return
    await require_admin(await authenticate(request, credentials))


PrincipalDep = Annotated[Principal, Depends(authenticate)]
AdminDep = Annotated[Principal, Depends(require_admin)]
