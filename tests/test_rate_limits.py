"""Rate limits: each API key and each client address has a token bucket (in Redis in production, in memory
when embedded); past it a request is a 429 problem with Retry-After. The cache of looked-up keys is bounded by
LRU, so a flood of invented keys does not evict the valid ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.db.migrate import upgrade
from core.settings import Settings
from core.tenants.principal import Principal
from service.app import create_app
from service.errors import Unauthorized
from service.rate_limits import MemoryBuckets
from service.tenants.deps import KeyLookup
from tests.fixtures import bearer, create_key

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


def assert_429_problem(response: httpx.Response, limit: Settings) -> int:
    """Asserts the response is the rate limit's 429 problem; returns its Retry-After."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert f"{limit.rate_limit_per_second:g} per second" in detail and f"{limit.rate_limit_burst}" in detail
    return int(response.headers["retry-after"])


def test_a_key_past_its_burst_gets_a_429_in_every_api_process_alike(
    settings: Settings, database_url: str, api_key: str
) -> None:
    # One token per 1,000 s: the bucket stays empty for the whole test, however slow the machine.
    limited = settings.model_copy(update={"rate_limit_per_second": 0.001, "rate_limit_burst": 3})
    bob = bearer(create_key(database_url, "bob"))
    with (
        TestClient(create_app(limited), headers=bearer(api_key), client=("10.0.0.1", 1000)) as first,
        TestClient(create_app(limited), headers=bearer(api_key), client=("10.0.0.2", 1000)) as second,
    ):
        assert [first.get("/v1/jobs").status_code for _ in range(2)] == [200, 200]
        assert second.get("/v1/jobs").status_code == 200  # another process, another address: the same key
        refused = second.get("/v1/jobs")
        other_key = second.get("/v1/jobs", headers=bob)  # the address of `second` has a token left

    assert 990 <= assert_429_problem(refused, limited) <= 1000
    assert other_key.status_code == 200
    assert first.get("/healthz").status_code == 200  # only /v1 is limited


def test_a_flood_of_invented_keys_from_one_address_is_held_to_its_rate(tmp_path: Path) -> None:
    embedded = Settings(data_dir=tmp_path, rate_limit_per_second=0.001, rate_limit_burst=5)
    upgrade(embedded.resolved_database_url)
    with TestClient(create_app(embedded)) as client:
        answers = [client.get("/v1/jobs", headers=bearer(f"sf_invented-{n}")).status_code for n in range(8)]
        refused = client.get("/v1/jobs", headers=bearer("sf_invented-last"))

    assert answers == [401] * 5 + [429] * 3
    assert 990 <= assert_429_problem(refused, embedded) <= 1000


def test_memory_buckets_refill_at_their_rate_up_to_their_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("service.rate_limits.time.monotonic", lambda: clock[0])
    buckets = MemoryBuckets(rate=2.0, burst=3)

    async def takes() -> list[float]:
        answers = [await buckets.take(["a"]) for _ in range(4)]  # 3 tokens, then 1 short: 0.5 s at 2 per second
        clock[0] += 0.25  # half a token
        answers.append(await buckets.take(["a"]))  # 0.25 s more
        clock[0] += 0.25
        answers.append(await buckets.take(["a", "b"]))  # a full `a`, a new `b`: both give one
        answers.append(await buckets.take(["a", "b"]))  # `a` is empty again: neither gives one
        clock[0] += 100
        answers.append(await buckets.take(["b"]))  # refilled to 3 (the burst), not to 200
        answers.extend([await buckets.take(["b"]) for _ in range(3)])
        return answers

    assert asyncio.run(takes()) == [0, 0, 0, 0.5, 0.25, 0, 0.5, 0, 0, 0, 0.5]
