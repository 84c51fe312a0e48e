"""Rate limits on /v1: a token bucket per API key and one per client address.

The rule, for each request to a /v1 route:
1. Its buckets are its client address's and, when it sends a key (and the server asks for keys), that key's,
   named by the key's digest before the key is checked.
2. A bucket holds at most `RATE_LIMIT_BURST` tokens (a new bucket is full) and gains `RATE_LIMIT_PER_SECOND`
   tokens per second up to that.
3. When every one of its buckets holds a token, the request takes one from each and goes on.
4. Otherwise it takes none and is answered 429, with `Retry-After` the seconds until each of its buckets holds
   a token again, rounded up.

An invented key gets a full bucket of its own, but draws on its address's too, so a flood of invented keys is
held to one address's rate (and so are their database lookups).

In production the buckets live in Redis, the broker, so every API process draws on the same ones: one Lua
script reads, refills and takes from all of a request's buckets atomically, on Redis's clock. In embedded mode
(the file-system broker) they live in the API process's memory, at most `MemoryBuckets.max_buckets` of them,
the least recently used dropped first. If Redis cannot be reached, requests pass, and the log says why: the
API still answers reads while the broker is down.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from core.settings import Settings
from core.tenants import keys
from service.errors import problem

log = logging.getLogger(__name__)

# KEYS: the buckets; ARGV: tokens per second, burst. Returns the seconds to wait, "0" when a token was taken.
TAKE_SCRIPT = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local levels, wait = {}, 0
for i, key in ipairs(KEYS) do
  local held = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = burst
  if held[1] then
    tokens = math.min(burst, tonumber(held[1]) + math.max(0, now - tonumber(held[2])) * rate)
  end
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
if wait > 0 then return tostring(wait) end
local full_after_ms = math.ceil(burst / rate * 1000) + 1000
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', levels[i] - 1, 'at', now)
  redis.call('PEXPIRE', key, full_after_ms)
end
return '0'
"""


class Buckets(Protocol):
    async def take(self, names: list[str]) -> float:
        """Takes a token from each bucket and returns 0; or takes none and returns the seconds to wait."""
        ...

    async def close(self) -> None: ...


class MemoryBuckets:
    """The buckets of one API process (embedded mode), the rule above in Python."""

    max_buckets = 100_000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._held: OrderedDict[str, tuple[float, float]] = OrderedDict()  # name: tokens, when

    async def take(self, names: list[str]) -> float:
        now = time.monotonic()
        levels = []
        for name in names:
            tokens, at = self._held.get(name, (self.burst, now))
            levels.append(min(self.burst, tokens + max(0.0, now - at) * self.rate))
        wait = max((1 - tokens) / self.rate for tokens in levels if tokens < 1) if min(levels) < 1 else 0.0
        if wait > 0:
            return wait
        for name, tokens in zip(names, levels, strict=True):
            self._held[name] = (tokens - 1, now)
            self._held.move_to_end(name)
        while len(self._held) > self.max_buckets:
            self._held.popitem(last=False)
        return 0.0

    async def close(self) -> None:
        pass


class RedisBuckets:
    """The buckets of all API processes, in Redis, under a prefix named after the queue (one per deployment)."""

    def __init__(self, url: str, prefix: str, rate: float, burst: int) -> None:
        self.prefix, self.rate, self.burst = prefix, rate, burst
        self.redis = redis.asyncio.Redis.from_url(url)
        self.script = self.redis.register_script(TAKE_SCRIPT)

    async def take(self, names: list[str]) -> float:
        try:
            wait = await self.script(keys=[self.prefix + name for name in names], args=[self.rate, self.burst])
        except RedisError as exc:
            log.warning("rate limits not applied, Redis unavailable: %s", exc)
            return 0.0
        return float(wait)

    async def close(self) -> None:
        await self.redis.aclose()


def buckets_for(settings: Settings) -> Buckets | None:
    """Where this server keeps its buckets; None when rate limits are off (`RATE_LIMIT_PER_SECOND=0`)."""
    rate, burst = settings.rate_limit_per_second, settings.rate_limit_burst
    if rate == 0:
        return None
    if settings.broker_is_filesystem:
        return MemoryBuckets(rate, burst)
    return RedisBuckets(settings.resolved_broker_url, f"steadyfit:rate:{settings.queue_name}:", rate, burst)


class RateLimit:
    """Applies the rule above to every /v1 request, before its body is read or its key looked up."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.detail = (
            f"too many requests: the limit is {settings.rate_limit_per_second:g} per second, in bursts of up to "
            f"{settings.rate_limit_burst}, for each API key and each client address; retry later"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        buckets: Buckets | None = scope["app"].state.rate_limits if scope["type"] == "http" else None
        if buckets is None or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        wait = await buckets.take(self.bucket_names(scope))
        if wait > 0:
            headers = {"Retry-After": str(math.ceil(wait))}
            await problem(429, self.detail, headers=headers)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def bucket_names(self, scope: Scope) -> list[str]:
        client = scope.get("client")
        names = [f"address:{client[0] if client else 'unknown'}"]
        scheme, _, secret = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1").partition(" ")
        if self.settings.auth == "keys" and scheme.lower() == "bearer" and secret:
            names.append(f"key:{keys.digest(secret.strip())}")
        return names
