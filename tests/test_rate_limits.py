"""Rate limits: each API key and each client address has a token bucket (in Redis in production, in memory
when embedded); past it a request is a 429 problem with Retry-After. The cache of looked-up keys is bounded by
LRU, so a flood of invented keys does not evict the valid ones."""

from __future__ import annotations

import asyncio

import pytest

from service.errors import Unauthorized
from service.tenants.deps import KeyLookup
from service.tenants.principal import Principal

ALICE = Principal(owner="alice")
VALID = "sf_valid"


def test_a_flood_of_invented_keys_leaves_a_valid_cached_key_cached() -> None:
    lookup = KeyLookup(database=None, ttl=3600)  # type: ignore[arg-type]  # every load goes to `load` below
    loaded: list[str] = []

    def load(secret: str) -> tuple[Principal | None, bool]:
        loaded.append(secret)
        return (ALICE, False) if secret == VALID else (None, False)

    lookup._load = load  # type: ignore[method-assign]

    async def flood() -> None:
        for n in range(20_000):
            if n % 1000 == 0:  # the valid key's owner keeps polling through the flood
                assert await lookup.principal(VALID) == ALICE
            with pytest.raises(Unauthorized):
                await lookup.principal(f"sf_invented-{n}")

    asyncio.run(flood())
    assert loaded.count(VALID) == 1  # looked up once, then always answered from the cache
    assert len(loaded) == 20_001  # each invented key looked up once
