"""Tells API processes the moment a job changes, so event streams do not have to poll hard.

Workers publish "job X changed" on Redis pub/sub after every epoch and status change; each API process
runs one subscriber and wakes the streams watching that job. The database stays the only source of
what changed: a notification only says "look now". Without Redis (the embedded mode) streams poll
the database instead, which on a local SQLite file costs next to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

import redis
import redis.asyncio as aioredis

from service.settings import Settings

log = logging.getLogger(__name__)

FALLBACK_POLL_SECONDS = 2.0  # with notifications, a missed one delays an event by at most this
EMBEDDED_POLL_SECONDS = 0.1


def channel_prefix(settings: Settings) -> str:
    return f"steadyfit:{settings.queue_name}:job:"


class ChangePublisher:
    """The workers' side: a cheap fire-and-forget publish; a lost notification only delays a stream."""

    def __init__(self, settings: Settings) -> None:
        self.prefix = channel_prefix(settings)
        self.client = None if settings.broker_is_filesystem else redis.Redis.from_url(settings.resolved_broker_url)

    def job_changed(self, job_id: str) -> None:
        if self.client is None:
            return
        try:
            self.client.publish(self.prefix + job_id, b"")
        except redis.RedisError as exc:
            log.debug("could not publish a change of job %s: %s", job_id, exc)


class ChangeHub:
    """The API's side: `await hub.wait(job_id)` returns when the job may have changed."""

    def __init__(self, settings: Settings) -> None:
        self.prefix = channel_prefix(settings)
        self.url = None if settings.broker_is_filesystem else settings.resolved_broker_url
        self.poll_seconds = EMBEDDED_POLL_SECONDS if self.url is None else FALLBACK_POLL_SECONDS
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._changes: dict[str, int] = {}  # notifications seen, for the jobs someone waits on
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.url is not None:
            self._task = asyncio.create_task(self._listen(self.url), name="job-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, 2.0)

    def watch(self, job_id: str) -> None:
        """Start counting the job's notifications (see `seen`); `unwatch` stops it."""
        self._changes.setdefault(job_id, 0)

    def unwatch(self, job_id: str) -> None:
        self._changes.pop(job_id, None)

    def seen(self, job_id: str) -> int:
        """How many notifications of a watched job have arrived: take it before reading the job, and
        pass it to `wait`, so one that arrives between the read and the wait is not lost."""
        return self._changes.get(job_id, 0)

    async def wait(self, job_id: str, seen: int | None = None) -> None:
        """Until a notification for this job arrives (or has arrived since `seen`) or the poll interval passes."""
        if seen is not None and self.seen(job_id) != seen:
            return
        event = asyncio.Event()
        self._waiters[job_id].add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), self.poll_seconds)
        finally:
            waiters = self._waiters[job_id]
            waiters.discard(event)
            if not waiters:
                del self._waiters[job_id]

    async def _listen(self, url: str) -> None:
        while True:
            try:
                client = aioredis.Redis.from_url(url)
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(self.prefix + "*")
                    async for message in pubsub.listen():
                        if message["type"] == "pmessage":
                            self._wake(message["channel"].decode().removeprefix(self.prefix))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: streams fall back to polling meanwhile
                log.warning("job change listener: %s; reconnecting", exc)
                await asyncio.sleep(1.0)

    def _wake(self, job_id: str) -> None:
        if job_id in self._changes:
            self._changes[job_id] += 1
        for event in self._waiters.get(job_id, ()):
            event.set()
