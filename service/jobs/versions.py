"""Each job's ETag, kept in memory so a `304 Not Modified` needs neither the database nor a thread.

The database itself says when an entry goes stale, whichever process made the change:
- PostgreSQL: whenever a change a client can see commits, the job's id arrives on the LISTEN connection
  each API process holds (core/db/notifications.py). So the table lags a commit by the notification's
  delivery (milliseconds), never by more.
- SQLite (the embedded mode, which has no NOTIFY): a thread of each API process reads `PRAGMA data_version`
  every `DATA_VERSION_SECONDS` (50 ms). It moves whenever another connection commits: the worker's epoch,
  its lease renewal, another API process's cancel. When it has moved, the thread reads the ETag columns of
  the unfinished jobs in the table, in one query, and drops each entry they no longer match; finished jobs
  never change again. So a poll sees a commit at most 50 ms after it, plus that query (well under a
  millisecond for the jobs one person watches); a quiet database costs one PRAGMA (microseconds) a round.
  Reading it on a thread of its own, not on the event loop or in the thread pool, keeps that bound when
  requests keep both busy.
An entry is used only while that source is up: when it fails, the table is emptied and every request reads
the database until it is back.

Pages of the job list are kept the same way (`KeptPage`): a page stays current until a job on it changes,
a job of the owner it lists is created (PostgreSQL's second channel, or this process's own commit), or, for
a page that a change can reorder or refilter (a status filter, an order by a metric), any job changes.

A read that raced with a change is not stored: each read carries the sequence number of the changes seen
before it started, and is kept only if no change of its job came after (with SQLite, no move of the
database at all: a move does not say which job changed until its query has run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from core.db import notifications
from core.db.engine import Database, after_commit
from core.db.models import Job
from core.jobs import repository

MAX_ENTRIES = 100_000  # a few MiB; past it the table starts again empty
MAX_PAGES = 1_000  # pages of the job list kept: up to 200 ids each, at most about 25 MiB; bodies: BodyCache
DATA_VERSION_SECONDS = 0.05  # with SQLite: how stale a kept ETag can be
MARKS_PER_QUERY = 500  # ids in one query (older SQLite builds take at most 999 parameters)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Version:
    """What a job's ETag is made of, and what a metrics page needs of the job besides its epochs."""

    etag: str
    terminal: bool
    owner: str
    status: str
    best_epoch: int | None
    epochs: int  # epochs_completed: a page under this ETag shows epochs 1..epochs, never more


@dataclass(frozen=True)
class KeptPage:
    """A page of the job list as this process read it: its ETag, and what can make it stale."""

    etag: str
    job_ids: frozenset[str]
    scope: str | None  # the owner whose jobs it lists; None: everyone's
    moves_with_changes: bool  # a change of any job can move one onto or off it
    mark: int  # `VersionTable.mark()` before it was read


def job_etag(updated_at: datetime, epochs_completed: int) -> str:
    """Every change a client can see sets `updated_at`; the epoch count tells apart two in one microsecond."""
    return f'"{updated_at.timestamp():.6f}-{epochs_completed}"'


class VersionTable:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.database_url = database.engine.url.render_as_string(hide_password=False)
        self.listens = notifications.listens(self.database_url)
        self.watches = notifications.has_data_version(self.database_url)
        self.enabled = self.listens or self.watches
        self.live = False
        self.new_jobs_notified = True  # False while PostgreSQL lacks the new-job trigger: no page is kept
        self._versions: dict[str, Version] = {}
        self._notified: dict[str, int] = {}  # job id → sequence number of its last change
        self._sequence = 0
        self._refused_before = 0  # reads that started before this sequence number are not kept
        self._last_change = -1  # sequence number of the last change of any job
        self._added: dict[str, int] = {}  # owner → sequence number of the last job created for it
        self._last_added = -1
        self._pages: OrderedDict[Hashable, KeptPage] = OrderedDict()
        self._lock = threading.Lock()  # reads store from the thread pool, changes arrive on the event loop
        self._task: asyncio.Task[None] | None = None
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        # This process's own new jobs, at commit: its next list must show them without waiting for the database.
        event.listen(database.sessions, "after_flush", self._note_new_jobs)

    async def start(self) -> None:
        if self.listens:
            listening = notifications.listen_for_job_changes(self.database_url, self.changed, self.added, self._restart)
            self._task = asyncio.create_task(listening, name="job-version-listener")
        elif self.watches:
            self._watcher = threading.Thread(target=self._watch_data_version, name="job-version-watcher", daemon=True)
            self._watcher.start()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, 2.0)
        if self._watcher is not None:
            self._stopping.set()
            await asyncio.to_thread(self._watcher.join, 2.0)

    def get(self, job_id: str) -> Version | None:
        return self._versions.get(job_id) if self.live else None

    def mark(self) -> int:
        """Take before reading a version from the database; hand it to `put` with what was read."""
        return self._sequence

    def put(self, job_id: str, version: Version, mark: int) -> None:
        """Keep a version read from the database, unless the job (or the table) changed since `mark`."""
        with self._lock:
            if not self.live or self._refused_before > mark or self._notified.get(job_id, -1) > mark:
                return
            if len(self._versions) >= MAX_ENTRIES:
                self._reset()
            self._versions[job_id] = version

    def page(self, key: Hashable) -> KeptPage | None:
        """The page of the job list kept under `key`, while nothing that could change it has happened since."""
        if not (self.live and self.new_jobs_notified):
            return None
        with self._lock:
            kept = self._pages.get(key)
            if kept is None:
                return None
            if not self._current(kept):
                del self._pages[key]
                return None
            self._pages.move_to_end(key)
            return kept

    def keep_page(self, key: Hashable, page: KeptPage) -> None:
        """Keep a page read from the database, unless something that could change it happened since its mark."""
        with self._lock:
            if not (self.live and self.new_jobs_notified) or not self._current(page):
                return
            self._pages[key] = page
            self._pages.move_to_end(key)
            if len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)

    def added(self, owner: str) -> None:
        """A job of `owner` was created (a notification, or this process's own commit)."""
        with self._lock:
            self._sequence += 1
            self._added[owner] = self._last_added = self._sequence

    def changed(self, job_id: str) -> None:
        """The job changed (a notification, or this process's own committed write)."""
        with self._lock:
            self._sequence += 1
            self._versions.pop(job_id, None)
            self._notified[job_id] = self._last_change = self._sequence
            if len(self._notified) >= MAX_ENTRIES:
                self._reset()

    def drop_changed(self) -> None:
        """The database has moved (SQLite): refuse what reads under way may have read before it did, and drop
        each unfinished job's entry that its row no longer matches."""
        with self._lock:
            self._refuse_reads_under_way()
            kept = {job_id: version.etag for job_id, version in self._versions.items() if not version.terminal}
        ids = list(kept)
        for start in range(0, len(ids), MARKS_PER_QUERY):
            chunk = ids[start : start + MARKS_PER_QUERY]
            with self.database.autocommit_session() as session:
                marks = repository.change_marks(session, chunk)
            for job_id in chunk:
                mark = marks.get(job_id)
                if mark is None or job_etag(*mark) != kept[job_id]:
                    self.changed(job_id)

    def _watch_data_version(self) -> None:
        """The embedded mode's notifications, until `stop`: each round, whether the database moved."""
        data_version: notifications.DataVersion | None = None
        seen: int | None = None
        while not self._stopping.wait(DATA_VERSION_SECONDS):
            try:
                data_version = data_version or notifications.DataVersion(self.database_url)
                current = data_version.read()
                if current == seen:
                    continue
                if self.live:
                    self.drop_changed()
                else:
                    self._restart(live=True)
                seen = current
            except Exception as exc:  # the file briefly unreadable: memory is off until a round succeeds
                log.warning("job version watcher: %s", exc)
                self._restart(live=False)
                seen = None
        if data_version is not None:
            data_version.close()

    def _current(self, page: KeptPage) -> bool:
        """Whether nothing that could change `page` happened after its mark (call with the lock held)."""
        if page.mark < self._refused_before or (page.moves_with_changes and self._last_change > page.mark):
            return False
        added = self._last_added if page.scope is None else self._added.get(page.scope, -1)
        return added <= page.mark and all(self._notified.get(job_id, -1) <= page.mark for job_id in page.job_ids)

    def _note_new_jobs(self, session: Session, _context: Any) -> None:
        for owner in {new.owner for new in session.new if isinstance(new, Job)}:
            after_commit(session, partial(self.added, owner))

    def _refuse_reads_under_way(self) -> None:
        self._sequence += 1
        self._refused_before = self._sequence

    def _reset(self) -> None:
        self._refuse_reads_under_way()
        self._versions.clear()
        self._notified.clear()
        self._added.clear()
        self._pages.clear()

    def _restart(self, live: bool, new_jobs: bool = True) -> None:
        """The source of changes came up or went down: what was kept before may have missed changes. Without
        `new_jobs` (PostgreSQL without the new-job trigger) it says nothing of new jobs: no page is kept."""
        with self._lock:
            self._reset()
            self.live, self.new_jobs_notified = live, new_jobs
