"""Each job's ETag, kept in memory so a `304 Not Modified` needs neither the database nor a thread.

PostgreSQL itself says when an entry goes stale: whenever a change a client can see commits, whichever
process made it, the job's id arrives on the LISTEN connection each API process holds
(core/db/notifications.py). An entry is used only while that connection is up; when it drops, the table
is emptied and every request reads the database until it is back. A read that raced with a notification
is not stored: each read carries the sequence number of the notifications seen before it started, and is
kept only if no notification for its job (or reset) came after. So the table can lag a commit by the
notification's delivery (milliseconds), never by more.

Without PostgreSQL (the embedded SQLite mode) the table stays off and every request reads the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

from core.db import notifications

MAX_ENTRIES = 100_000  # a few MiB; past it the table starts again empty


@dataclass(frozen=True)
class Version:
    """What a job's ETag is made of, and what a metrics page needs of the job besides its epochs."""

    etag: str
    terminal: bool
    owner: str
    status: str
    best_epoch: int | None
    epochs: int  # epochs_completed: a page under this ETag shows epochs 1..epochs, never more


class VersionTable:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.enabled = notifications.listens(database_url)
        self.live = False
        self._versions: dict[str, Version] = {}
        self._notified: dict[str, int] = {}  # job id → sequence number of its last notification
        self._sequence = 0
        self._reset_at = 0
        self._lock = threading.Lock()  # reads store from the thread pool, notifications from the event loop
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.enabled:
            listening = notifications.listen_for_job_changes(self.database_url, self.changed, self._restart)
            self._task = asyncio.create_task(listening, name="job-version-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, 2.0)

    def get(self, job_id: str) -> Version | None:
        return self._versions.get(job_id) if self.live else None

    def mark(self) -> int:
        """Take before reading a version from the database; hand it to `put` with what was read."""
        return self._sequence

    def put(self, job_id: str, version: Version, mark: int) -> None:
        """Keep a version read from the database, unless the job (or the table) changed since `mark`."""
        with self._lock:
            if not self.live or self._reset_at > mark or self._notified.get(job_id, -1) > mark:
                return
            if len(self._versions) >= MAX_ENTRIES:
                self._reset()
            self._versions[job_id] = version

    def changed(self, job_id: str) -> None:
        """The job changed (a notification, or this process's own committed write)."""
        with self._lock:
            self._sequence += 1
            self._versions.pop(job_id, None)
            self._notified[job_id] = self._sequence
            if len(self._notified) >= MAX_ENTRIES:
                self._reset()

    def _reset(self) -> None:
        self._sequence += 1
        self._reset_at = self._sequence
        self._versions.clear()
        self._notified.clear()

    def _restart(self, live: bool) -> None:
        """The connection came up or went down: what was kept before may have missed notifications."""
        with self._lock:
            self._reset()
            self.live = live
