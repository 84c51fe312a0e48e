"""The `Idempotency-Key` header and the creating request it makes retry-safe, as one dependency of the
POST routes that create a resource (jobs, sweeps, data sets)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from core.settings import Settings
from service.deps import SessionDep, SettingsDep
from service.idempotency.service import Created, create_once, request_hash
from service.tenants.deps import PrincipalDep

IdempotencyKeyDep = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="Any unique string (a UUID): a retry with the same key and body returns the resource the "
        "first request created instead of creating another; with a different body it is a 409.",
    ),
]


R = TypeVar("R", bound=Created)
A = TypeVar("A")


@dataclass(frozen=True)
class IdempotentCreate:
    """A creating request's key, and the answer's headers to set."""

    session: Session
    settings: Settings
    owner: str
    key: str | None
    response: Response

    def __call__(self, route: str, body: tuple[Any, ...], create: Callable[[], R], load: Callable[[str], R]) -> R:
        """`create()` once per key: a retry with the same `body` gets the resource the first created, by
        `load(id)`. Sets `Location: /v1/{route}/{id}`, and `Idempotent-Replayed` on a replay."""
        resource, replayed = create_once(
            self.session,
            self.settings,
            owner=self.owner,
            key=self.key,
            route=route,
            body_hash=request_hash(*body),
            create=create,
            load=load,
        )
        self.response.headers["Location"] = f"/v1/{route}/{resource.id}"
        if replayed:
            self.response.headers["Idempotent-Replayed"] = "true"
        return resource

    async def answer(
        self,
        route: str,
        body: tuple[Any, ...],
        create: Callable[[], R],
        load: Callable[[str], R],
        read: Callable[[R], A],
    ) -> A:
        """As calling it, and the answer `read(resource)` made there too, all in the thread pool. A submission's
        commit, which releases the owner's lock (`tenants.limits.hold`), comes after the answer is made; in a
        sync route that would need a second pool thread while submissions waiting on the lock hold the pool."""
        return await run_in_threadpool(lambda: read(self(route, body, create, load)))


async def get_idempotent_create(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
) -> IdempotentCreate:
    return IdempotentCreate(session, settings, principal.owner, idempotency_key, response)


IdempotentCreateDep = Annotated[IdempotentCreate, Depends(get_idempotent_create)]
