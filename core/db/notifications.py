"""How the database says that something changed, whichever process changed it.

PostgreSQL: a trigger on `jobs` (migration 0008) sends `NOTIFY steadyfit_jobs, '<job id>'` when a change a
client can see commits, and another (0023) `NOTIFY steadyfit_job_added, '<owner>'` when a job is inserted.
`listen_for_job_changes` holds one connection that LISTENs on both channels, and reconnects when it drops;
around each (re)connection it calls `on_live(False, False)` / `on_live(True, new_jobs)`, since notifications
sent while it was down are lost and whatever was kept on their strength must be dropped; `new_jobs` says
whether the database has the new-job trigger (a database not yet migrated to 0023 has not).

SQLite (the embedded mode) has no NOTIFY, but `PRAGMA data_version` (`DataVersion`) moves whenever another
connection, in any process, commits: which jobs changed is then for the caller to read.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "steadyfit_jobs"
ADDED_CHANNEL = "steadyfit_job_added"
ADDED_TRIGGER = "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'jobs_added' AND tgrelid = 'jobs'::regclass)"
RECONNECT_SECONDS = 1.0


def listens(database_url: str) -> bool:
    """Only PostgreSQL notifies: on SQLite (the embedded mode) there is nothing to listen to."""
    return make_url(database_url).get_backend_name() == "postgresql"


def has_data_version(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "sqlite"


class DataVersion:
    """SQLite's `PRAGMA data_version` on a connection of its own, which commits nothing: so the number moves
    exactly when another connection, in this process or another, has committed a change to the database. One
    read costs a few microseconds and no lock (BENCHMARKS.md). Use it from one thread at a time."""

    def __init__(self, database_url: str) -> None:
        self._connection = sqlite3.connect(make_url(database_url).database or "", check_same_thread=False)

    def read(self) -> int:
        (number,) = self._connection.execute("PRAGMA data_version").fetchone()
        return int(number)

    def close(self) -> None:
        self._connection.close()


async def listen_for_job_changes(
    database_url: str,
    on_change: Callable[[str], None],
    on_added: Callable[[str], None],
    on_live: Callable[[bool, bool], None],
) -> None:
    """Call `on_change(job_id)` for each change of a job, `on_added(owner)` for each new job, until cancelled."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as connection:
                await connection.execute(f"LISTEN {CHANNEL}")
                await connection.execute(f"LISTEN {ADDED_CHANNEL}")
                found = await (await connection.execute(ADDED_TRIGGER)).fetchone()
                new_jobs = bool(found and found[0])
                if not new_jobs:
                    log.warning("no jobs_added trigger: run `steadyfit migrate`; until then job lists are not kept")
                on_live(True, new_jobs)
                async for notification in connection.notifies():
                    notified = on_added if notification.channel == ADDED_CHANNEL else on_change
                    notified(notification.payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database restarting: the caller reads it directly until it is back
            log.warning("job change listener: %s; reconnecting", exc)
        finally:
            on_live(False, False)
        await asyncio.sleep(RECONNECT_SECONDS)
