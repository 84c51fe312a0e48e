"""Tells API processes the moment a job changes, so event streams do not have to poll hard.

Workers publish "job X changed" on Redis pub/sub after every epoch and status change; each API process
runs one subscriber and wakes the streams watching that job. Without Redis (the embedded mode) one task
per API process looks at every watched job in one query a round and wakes those whose row moved, so a
hundred streams cost one small query a round, not a hundred. The database stays the only source of what
changed: a wake-up only says "look now".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import datetime

import redis
import redis.asyncio as aioredis
from anyio import to_thread

from core.db.engine import Database
from core.jobs import repository
from core.settings import Settings

log = logging.getLogger(__name__)

FALLBACK_POLL_SECONDS = 2.0  # with notifications, a missed one delays an event by at most this
EMBEDDED_POLL_SECONDS = 0.1  # one query a round for all of a process's streams
Mark = tuple[datetime, int] | None  # what `repository.change_marks` says of a job; None: no such job


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

    def __init__(self, settings: Settings, database: Database) -> None:
        self.prefix = channel_prefix(settings)
        self.database = database
        self.url = None if settings.broker_is_filesystem else settings.resolved_broker_url
        # Notifications can be lost, so streams also look every few seconds; the embedded poller compares
        # the rows themselves and misses nothing, so there streams wait for it alone.
        self.poll_seconds = None if self.url is None else FALLBACK_POLL_SECONDS
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._changes: dict[str, int] = {}  # notifications seen, for the jobs someone waits on
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        watcher = self._poll() if self.url is None else self._listen(self.url)
        self._task = asyncio.create_task(watcher, name="job-change-watcher")

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
        """Until a notification for this job arrives (or has arrived since `seen`), or the fallback poll
        interval passes (with notifications that may be lost)."""
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

    async def _poll(self) -> None:
        marks: dict[str, Mark] = {}
        while True:
            await asyncio.sleep(EMBEDDED_POLL_SECONDS)
            watched = list(self._changes)
            try:
                current = await to_thread.run_sync(self._read_marks, watched) if watched else {}
            except Exception as exc:  # the database busy or away: the next round looks again
                log.warning("job change poller: %s", exc)
                continue
            for job_id in watched:
                # A job seen for the first time wakes its streams too: it may have changed between their
                # first read and this round.
                if job_id not in marks or marks[job_id] != current.get(job_id):
                    self._wake(job_id)
            marks = {job_id: current.get(job_id) for job_id in watched}

    def _read_marks(self, job_ids: list[str]) -> dict[str, tuple[datetime, int]]:
        with self.database.autocommit_session() as session:
            return repository.change_marks(session, job_ids)

    def _wake(self, job_id: str) -> None:
        if job_id in self._changes:
            self._changes[job_id] += 1
        for event in self._waiters.get(job_id, ()):
            event.set()
