"""Server-sent events for one job: an `epoch` event per finished epoch, a `log` event per worker log line and
a `status` event per change. Log events are sent only to a stream that asks for them (`logs_after`), so a
client written for epochs and statuses meets nothing else.

Epoch events carry `id: <epoch>`, so a client that reconnects with `Last-Event-ID: N` receives exactly
the epochs after N and then the live tail. Log and status events carry no id (they do not move the resume
point); a log event's data has the line's `seq`, which a client passes as `logs_after` when it reconnects.
The stream ends after the terminal status, or at its lifetime (`max_stream_seconds`, so no
connection is held for ever) with a `reconnect` event: it carries `retry:` and the last epoch sent as its
id, so a browser's EventSource comes back by itself and resumes its epochs exactly where it was (its log lines
start again from the URL's `logs_after`; their `seq` tells repeats).

All the streams of one job in an API process share one `JobFeed`: on each change notification it reads
the job and its new epochs once and formats each event once, and every stream sends from it. So a
dashboard watched by 200 people costs one query per epoch, not 200.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from core.db.changes import ChangeHub
from core.db.engine import Database
from core.jobs import logs, repository
from core.states import TERMINAL
from service.jobs.schemas import JobLogLine, JobRead

KEEPALIVE_SECONDS = 15.0
RECONNECT_MS = 1000  # how soon a client told to reconnect comes back
LOG_LINES_PER_READ = 1000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    job: JobRead
    epochs: list[dict[str, Any]]
    log_lines: list[JobLogLine]


def _read(database: Database, job_id: str, after_epoch: int, after_log: int) -> Snapshot | None:
    # The job before its epochs and log lines: a terminal status is written after the last epoch and the
    # last lines, so all of them are already visible for a job read as finished.
    with database.autocommit_session() as session:
        job = repository.get(session, job_id)
        if job is None:
            return None
        summary = JobRead.model_validate(job)
        epochs = repository.epochs_after(session, job_id, after_epoch, None)
        lines = [JobLogLine.model_validate(line) for line in logs.after(session, job_id, after_log, LOG_LINES_PER_READ)]
        return Snapshot(summary, epochs, lines)


def format_event(event: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


def reconnect_event(last_epoch: int) -> str:
    data = json.dumps({"last_event_id": last_epoch, "retry_ms": RECONNECT_MS})
    return f"retry: {RECONNECT_MS}\n" + format_event("reconnect", data, last_epoch)


class JobFeed:
    """One job's events as this process has read them: every epoch so far, formatted, and the last status."""

    def __init__(self, database: Database, hub: ChangeHub, job_id: str) -> None:
        self.database, self.hub, self.job_id = database, hub, job_id
        self.numbers: list[int] = []  # the epochs read, in order
        self.events: list[str] = []  # their events, formatted once for every stream
        self.log_numbers: list[int] = []  # the log lines read, in order, and their events
        self.log_events: list[str] = []
        self.more_logs = False  # the last read stopped at LOG_LINES_PER_READ
        self.status: str | None = None
        self.status_event = ""
        self.gone = False  # no such job
        self.reads = 0  # bumped after each read; streams wait for it to move
        self.changed = asyncio.Condition()
        self.streams = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.hub.watch(self.job_id)
        self._task = asyncio.create_task(self._follow(), name=f"job-feed-{self.job_id}")

    async def stop(self) -> None:
        self.hub.unwatch(self.job_id)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def finished(self) -> bool:
        return self.gone or (self.status in TERMINAL and not self.more_logs)

    def events_after(self, epoch: int) -> list[str]:
        return self.events[bisect.bisect_right(self.numbers, epoch) :]

    def log_events_after(self, seq: float) -> list[str]:
        return self.log_events[bisect.bisect_right(self.log_numbers, seq) :]

    async def _follow(self) -> None:
        while not self.finished:
            seen = self.hub.seen(self.job_id)
            last, last_log = (self.numbers[-1:] or [0])[0], (self.log_numbers[-1:] or [0])[0]
            try:
                snapshot = await run_in_threadpool(_read, self.database, self.job_id, last, last_log)
            except Exception as exc:  # the database briefly away: streams stay open, the next round retries
                log.warning("events of job %s: %s", self.job_id, exc)
                await asyncio.sleep(1.0)
            else:
                self._apply(snapshot)
            async with self.changed:
                self.reads += 1
                self.changed.notify_all()
            if not self.finished and not self.more_logs:
                await self.hub.wait(self.job_id, seen)

    def _apply(self, snapshot: Snapshot | None) -> None:
        if snapshot is None:
            self.gone = True
            return
        for epoch in snapshot.epochs:
            self.numbers.append(epoch["epoch"])
            self.events.append(format_event("epoch", json.dumps(epoch), epoch["epoch"]))
        for line in snapshot.log_lines:
            self.log_numbers.append(line.seq)
            self.log_events.append(format_event("log", line.model_dump_json()))
        self.more_logs = len(snapshot.log_lines) == LOG_LINES_PER_READ
        if snapshot.job.status != self.status:
            self.status = snapshot.job.status
            self.status_event = format_event("status", snapshot.job.model_dump_json())


class JobFeeds:
    """The feeds of the jobs this process is streaming; a feed lives while some stream uses it."""

    def __init__(self, database: Database, hub: ChangeHub) -> None:
        self.database, self.hub = database, hub
        self._feeds: dict[str, JobFeed] = {}

    def join(self, job_id: str) -> JobFeed:
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = self._feeds[job_id] = JobFeed(self.database, self.hub, job_id)
            feed.start()
        feed.streams += 1
        return feed

    async def leave(self, feed: JobFeed) -> None:
        feed.streams -= 1
        if feed.streams == 0 and self._feeds.get(feed.job_id) is feed:
            del self._feeds[feed.job_id]
            await feed.stop()


async def get_job_feeds(request: Request) -> JobFeeds:
    feeds: JobFeeds = request.app.state.feeds
    return feeds


JobFeedsDep = Annotated[JobFeeds, Depends(get_job_feeds)]


async def _next_read(feed: JobFeed, reads: int, timeout: float) -> bool:
    """Whether the feed has read the job again since `reads`, within `timeout` seconds."""
    async with feed.changed:
        try:
            await asyncio.wait_for(feed.changed.wait_for(lambda: feed.reads != reads), timeout)
        except TimeoutError:
            return False
    return True


async def job_events(
    feeds: JobFeeds, job_id: str, after_epoch: int, after_log: int | None, lifetime: float
) -> AsyncIterator[str]:
    """The job's epochs after `after_epoch` and log lines after `after_log` (none when it is None), for at most
    `lifetime` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime
    feed = feeds.join(job_id)
    try:
        sent_epoch, sent_status, reads = after_epoch, None, 0
        sent_log: float = after_log if after_log is not None else math.inf  # no line comes after infinity
        while True:
            wait = min(KEEPALIVE_SECONDS, deadline - loop.time())
            if wait <= 0:
                yield reconnect_event(sent_epoch)
                return
            if not await _next_read(feed, reads, wait):
                yield ": keepalive\n\n"
                continue
            reads = feed.reads
            if feed.gone:
                return
            # Taken together, before any yield: the feed may grow while this stream sends.
            events, status, status_event = feed.events_after(sent_epoch), feed.status, feed.status_event
            log_events = feed.log_events_after(sent_log)
            sent_epoch, sent_log = max([sent_epoch, *feed.numbers[-1:]]), max([sent_log, *feed.log_numbers[-1:]])
            for event in events:
                yield event
            for event in log_events:
                yield event
            if feed.more_logs and after_log is not None:
                continue  # the rest of a long log first: the status event, if final, ends the stream
            if status != sent_status:
                sent_status = status
                yield status_event
            if status in TERMINAL:
                return
    finally:
        await feeds.leave(feed)
