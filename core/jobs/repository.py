"""All SQL about jobs and their epochs, for the API and the workers alike.

Every change a client can see sets `updated_at` (lease renewals do not), which is what ETags rest on.

State changes are single conditional UPDATEs, so two processes racing for the same job cannot both win:
a claim succeeds only for a queued job or one whose lease has expired, and a worker's writes only count
while it still holds the lease. Each change its owner's webhooks may be told of (a first start, an end) is
recorded for them in the same transaction (core/webhooks/outbox.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Row,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.db.base import UTCDateTime, utcnow
from core.db.models import EpochMetrics, Job
from core.db.pagination import keyset
from core.jobs import search
from core.jobs.search import JobSearch
from core.states import ACTIVE, JobStatus, StopReason, WebhookEvent
from core.webhooks import outbox


def add(session: Session, job: Job) -> Job:
    """Store a new job, with the hash of its spec as stored (what a rerun compares)."""
    job.spec_hash = spec_hash(job.spec)
    session.add(job)
    session.flush()
    return job


def spec_hash(spec: dict[str, Any]) -> str:
    """`sha256:` and the digest of the spec's canonical JSON (keys sorted, no spaces)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def get_many(session: Session, job_ids: Collection[str]) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.id.in_(job_ids))).all() if job_ids else []


ETAG_COLUMNS = (Job.id, Job.updated_at, Job.epochs_completed)  # what a list page's ETag is made of


def list_page(
    session: Session, found: JobSearch, *, limit: int, cursor: str | None
) -> tuple[Sequence[Row[*tuple[Any, ...]]], str | None]:
    """A page of the jobs `found` selects, in its order: of each, what its ETag is made of (`id`,
    `updated_at`, `epochs_completed`); the jobs themselves only where needed (core/jobs/search.py)."""
    dialect = session.get_bind().dialect.name
    keys = search.sort_keys(found.order, dialect)
    query = search.filtered(select(*ETAG_COLUMNS, *keys), found, dialect)
    after = None if cursor is None else search.decode(found.order, cursor)
    rows = session.execute(keyset(query, keys, found.order.descending, limit, after)).all()
    if len(rows) <= limit:
        return rows, None
    last_keys = tuple(rows[limit - 1])[len(ETAG_COLUMNS) :]
    return rows[:limit], search.encode(found.order, last_keys)


def project_counts(session: Session, scope: str | None) -> list[tuple[str, int]]:
    """Each project of owner `scope` (of everyone's with None) and its number of jobs, by name (the
    (owner, project, …) index answers it)."""
    query = select(Job.project, func.count()).group_by(Job.project).order_by(Job.project)
    if scope is not None:
        query = query.where(Job.owner == scope)
    return [(project, int(count)) for project, count in session.execute(query)]


def version(session: Session, job_id: str) -> tuple[str, datetime, int, str, int | None] | None:
    """(status, updated_at, epochs_completed, owner, best_epoch): all an ETag needs, and a metrics page
    besides the epochs, from one primary-key lookup."""
    row = session.execute(
        select(Job.status, Job.updated_at, Job.epochs_completed, Job.owner, Job.best_epoch).where(Job.id == job_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4])


def change_marks(session: Session, job_ids: Collection[str]) -> dict[str, tuple[datetime, int]]:
    """(updated_at, epochs_completed) of each job that exists: one moves whenever a client could see a change."""
    query = select(Job.id, Job.updated_at, Job.epochs_completed).where(Job.id.in_(job_ids))
    return {job_id: (updated_at, epochs) for job_id, updated_at, epochs in session.execute(query)}


def epochs_after(
    session: Session, job_id: str, after_epoch: int, limit: int | None, up_to: int | None = None
) -> list[dict[str, Any]]:
    """The epochs after `after_epoch` (and up to `up_to`), oldest first, at most `limit`."""
    return decoded(epoch_texts(session, job_id, after_epoch, limit, up_to))


def epoch_texts(
    session: Session, job_id: str, after_epoch: int, limit: int | None, up_to: int | None = None
) -> list[tuple[int, str]]:
    """`epochs_after` as stored: each epoch's number and its metrics' JSON text, not decoded, for a page that
    goes out as JSON (decoding 1,000 epochs costs ten times what joining their texts does)."""
    query = (
        select(EpochMetrics.epoch, cast(EpochMetrics.metrics, Text))
        .where(EpochMetrics.job_id == job_id, EpochMetrics.epoch > after_epoch)
        .order_by(EpochMetrics.epoch)
        .limit(limit)
    )
    if up_to is not None:
        query = query.where(EpochMetrics.epoch <= up_to)
    return [(epoch, text) for epoch, text in session.execute(query)]


def decoded(rows: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """Rows of `epoch_texts` as the epochs themselves: `epoch` and that epoch's metrics."""
    return [{"epoch": epoch, **json.loads(text)} for epoch, text in rows]


def cancel_queued(session: Session, job_id: str) -> bool:
    """A queued job is cancelled on the spot; no worker will ever claim it."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.CANCELLED,
            stop_reason=StopReason.CANCELLED,
            cancel_requested=True,
            finished_at=now,
            updated_at=now,
        )
    )
    if not _changed(result):
        return False
    outbox.job_ended(session, job_id, JobStatus.CANCELLED)
    return True


def request_cancel(session: Session, job_id: str) -> bool:
    """A running job is asked to stop; its worker sees the flag at its next heartbeat."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        .values(cancel_requested=True, updated_at=utcnow())
    )
    return _changed(result)


def claim(session: Session, job_id: str, worker_id: str, lease_seconds: float, max_attempts: int) -> Job | None:
    """Take the job if it is claimable (see `claimable`). Returns it when this worker won."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, claimable(Job, now, max_attempts))
        .values(**claimed_values(worker_id, now, lease_seconds))
    )
    return claimed(session, job_id) if _changed(result) else None


def claimed(session: Session, job_id: str) -> Job | None:
    """The job this worker has just claimed, its first start recorded for its owner's webhooks."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is not None and job.attempts == 1:  # a job handed back and claimed again has already started
        outbox.job_events(session, [job_id], WebhookEvent.JOB_STARTED)
    return job


def claimable(job: type[Job], now: datetime, max_attempts: int) -> ColumnElement[bool]:
    """A job a worker may take: queued, or running with an expired lease (its worker was lost). One that has
    already been started `max_attempts` times is not taken again (see fail_exhausted). `job` is `Job` or an
    alias of it."""
    return and_(
        job.attempts < max_attempts,
        or_(job.status == JobStatus.QUEUED, and_(job.status == JobStatus.RUNNING, job.lease_expires_at < now)),
    )


def claimed_values(worker_id: str, now: datetime, lease_seconds: float) -> dict[str, Any]:
    """What a claim writes: running, under this worker's lease, one more attempt, started once."""
    return {
        "status": JobStatus.RUNNING,
        "worker_id": worker_id,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "attempts": Job.attempts + 1,
        "updated_at": now,
        "started_at": func.coalesce(Job.started_at, type_coerce(now, UTCDateTime)),
    }


def renew_lease(session: Session, job_id: str, worker_id: str, lease_seconds: float) -> bool | None:
    """Extend the lease. Returns whether a cancel was requested, or None when the lease is no longer ours."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    row = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
        .values(lease_expires_at=expires)
        .returning(Job.cancel_requested)
    ).first()
    return None if row is None else bool(row[0])


def record_epoch(
    session: Session,
    job_id: str,
    worker_id: str,
    epoch: int,
    metrics: dict[str, Any],
    best_epoch: int | None,
    best_metrics: dict[str, Any] | None,
) -> bool:
    """Write one epoch's row and the job's progress together, only while the lease is ours.

    On PostgreSQL it is one statement (the progress UPDATE and the epoch's INSERT as CTEs), so in a session
    from `Database.single_statement_session` it is one round trip and atomic on its own.
    """
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        parameters = {"job": job_id, "holder": worker_id, "epoch": epoch, "metrics": metrics, "now": now}
        if best_epoch is not None:
            parameters.update(best=best_epoch, best_values=best_metrics)
        return bool(session.scalar(_record_epoch_statement(best_epoch is not None), parameters))
    values: dict[str, Any] = {"epochs_completed": epoch, "updated_at": now}
    if best_epoch is not None:
        values.update(best_epoch=best_epoch, best_metrics=best_metrics)
    progress = (
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
        .values(**values)
    )
    if not _changed(session.execute(progress)):
        return False
    session.execute(
        sqlite_insert(EpochMetrics)
        .values(job_id=job_id, epoch=epoch, metrics=metrics, recorded_at=now)
        .on_conflict_do_nothing(index_elements=EPOCH_KEY)
    )
    return True


EPOCH_KEY = ["job_id", "epoch"]


@functools.cache
def _record_epoch_statement(with_best: bool) -> Select[int]:
    """`record_epoch`'s PostgreSQL statement, with the epoch's values as parameters. Built once: building it
    per epoch cost more CPU than the database spends running it. No parameter is named after a column of
    `jobs`: an UPDATE would take such a parameter as a value to SET."""
    values: dict[str, Any] = {"epochs_completed": bindparam("epoch"), "updated_at": bindparam("now")}
    if with_best:
        values.update(best_epoch=bindparam("best"), best_metrics=bindparam("best_values"))
    progress = (
        update(Job)
        .where(Job.id == bindparam("job"), Job.worker_id == bindparam("holder"), Job.status == JobStatus.RUNNING)
        .values(**values)
        .returning(Job.id)
        .cte("progress")
    )
    row = select(
        progress.c.id,
        bindparam("epoch", type_=Integer),
        bindparam("metrics", type_=JSON),
        bindparam("now", type_=UTCDateTime),
    )
    recorded = (
        pg_insert(EpochMetrics)
        .from_select([*EPOCH_KEY, "metrics", "recorded_at"], row)
        .on_conflict_do_nothing(index_elements=EPOCH_KEY)
        .cte("recorded")
    )
    return select(func.count()).select_from(progress).add_cte(recorded)


def finish(session: Session, job_id: str, worker_id: str, status: JobStatus, **values: Any) -> bool:
    """Move a running job to a terminal status and release its lease."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
        .values(
            status=status, finished_at=utcnow(), updated_at=utcnow(), worker_id=None, lease_expires_at=None, **values
        )
    )
    if not _changed(result):
        return False
    outbox.job_ended(session, job_id, status)
    return True


def release(session: Session, job_id: str, worker_id: str) -> bool:
    """Hand a running job back to the queue (its worker is shutting down); its epochs are kept."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.QUEUED, worker_id=None, lease_expires_at=None, last_sent_at=utcnow(), updated_at=utcnow()
        )
    )
    return _changed(result)


def _changed(result: Any) -> bool:
    return bool(result.rowcount)


def due_for_dispatch(session: Session, *, older_than: float, include_queued: bool) -> list[str]:
    """Ids of jobs whose message may be lost, marked as sent now; each is picked by one reconciler only.

    Running jobs whose lease expired (their worker died) always qualify; queued jobs only when the
    caller has seen the broker's queue empty, i.e. their messages are gone.
    """
    now = utcnow()
    stale = or_(Job.last_sent_at.is_(None), Job.last_sent_at < now - timedelta(seconds=older_than))
    lost = and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)
    if include_queued:
        lost = or_(lost, Job.status == JobStatus.QUEUED)
    rows = session.execute(update(Job).where(stale, lost).values(last_sent_at=now).returning(Job.id))
    return [row[0] for row in rows]


def fail_exhausted(session: Session, max_attempts: int) -> list[str]:
    """Fail the jobs whose worker died `max_attempts` times (e.g. killed for memory), so they stop looping."""
    rows = session.execute(
        update(Job)
        .where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < utcnow(), Job.attempts >= max_attempts)
        .values(
            status=JobStatus.FAILED,
            finished_at=utcnow(),
            updated_at=utcnow(),
            worker_id=None,
            lease_expires_at=None,
            error=f"the worker stopped {max_attempts} times while training this job; giving up",
        )
        .returning(Job.id)
    )
    job_ids = [row[0] for row in rows]
    outbox.job_events(session, job_ids, WebhookEvent.JOB_FAILED)
    return job_ids


def count_active(session: Session, owner: str) -> dict[JobStatus, int]:
    """How many of the owner's jobs are queued and running (the owner-status index answers it)."""
    rows = session.execute(
        select(Job.status, func.count()).where(Job.owner == owner, Job.status.in_(ACTIVE)).group_by(Job.status)
    )
    counts = dict.fromkeys(ACTIVE, 0)
    counts.update({status: int(count) for status, count in rows})
    return counts
