"""Server-sent events for one job: an `epoch` event per finished epoch and a `status` event per change.

Epoch events carry `id: <epoch>`, so a client that reconnects with `Last-Event-ID: N` receives exactly
the epochs after N and then the live tail. Status events carry no id (they do not move the resume
point). The stream ends after the terminal status.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi.concurrency import run_in_threadpool

from service.db.engine import Database
from service.events.hub import ChangeHub
from service.jobs import repository
from service.jobs.schemas import TERMINAL_STATUSES, JobRead

KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class Snapshot:
    job: JobRead
    epochs: list[dict[str, Any]]


def _read(database: Database, job_id: str, after_epoch: int) -> Snapshot | None:
    # The job before its epochs: a terminal status is written after the last epoch, so every epoch of a
    # job read as finished is already visible.
    with database.session() as session:
        job = repository.get(session, job_id)
        if job is None:
            return None
        summary = JobRead.model_validate(job)
        return Snapshot(summary, repository.epochs_after(session, job_id, after_epoch, None))


def format_event(event: str, data: str, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n"


async def job_events(database: Database, hub: ChangeHub, job_id: str, after_epoch: int) -> AsyncIterator[str]:
    sent_status: str | None = None
    quiet_since = time.monotonic()
    while True:
        snapshot = await run_in_threadpool(_read, database, job_id, after_epoch)
        if snapshot is None:
            return
        for epoch in snapshot.epochs:
            after_epoch = epoch["epoch"]
            yield format_event("epoch", json.dumps(epoch), after_epoch)
        sent_anything = bool(snapshot.epochs)
        if snapshot.job.status != sent_status:
            sent_status = snapshot.job.status
            sent_anything = True
            yield format_event("status", snapshot.job.model_dump_json())
        if sent_anything:
            quiet_since = time.monotonic()
        if sent_status in TERMINAL_STATUSES:
            return
        if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"
        await hub.wait(job_id)
