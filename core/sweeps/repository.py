"""All SQL about sweeps and their trials (the jobs whose sweep_id is set), for the API and the workers.

Schedulers take turns on a sweep through `lock`, an UPDATE of the sweep's row as the first statement of
their transaction: on PostgreSQL it holds the row lock until commit, on SQLite the database's write lock,
and either way the next scheduler reads the trials only once the previous one has committed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, defer

from core.db.base import utcnow
from core.db.models import EpochMetrics, Job, Sweep
from core.db.pagination import newest_first_page
from core.states import JobStatus, StopReason, SweepKind, SweepStatus, WebhookEvent
from core.webhooks import outbox


def add(session: Session, sweep: Sweep) -> Sweep:
    session.add(sweep)
    session.flush()
    return sweep


def get(session: Session, sweep_id: str) -> Sweep | None:
    return session.get(Sweep, sweep_id)


def list_page(
    session: Session,
    *,
    scope: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    kind: SweepKind = SweepKind.SWEEP,
) -> tuple[Sequence[Sweep], str | None]:
    """A page of the sweeps (or paths) of owner `scope` (of everyone's with None)."""
    query = select(Sweep).where(Sweep.kind == kind)
    if scope is not None:
        query = query.where(Sweep.owner == scope)
    if status is not None:
        query = query.where(Sweep.status == status)
    return newest_first_page(session, query, Sweep, limit, cursor)


def lock(session: Session, sweep_id: str) -> Sweep | None:
    """Take the running sweep's row lock until this transaction ends; None when it is not running."""
    result = session.execute(
        update(Sweep).where(Sweep.id == sweep_id, Sweep.status == SweepStatus.RUNNING).values(scheduled_at=utcnow())
    )
    if not _changed(result):
        return None
    return session.get(Sweep, sweep_id, populate_existing=True)


def running_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Sweep.id).where(Sweep.status == SweepStatus.RUNNING)))


def finish(session: Session, sweep_id: str, status: SweepStatus) -> bool:
    result = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == SweepStatus.RUNNING)
        .values(status=status, finished_at=utcnow())
    )
    if not _changed(result):
        return False
    outbox.sweep_finished(session, sweep_id)
    return True


def trials(session: Session, sweep_id: str) -> Sequence[Job]:
    """Every trial of the sweep, by number, read afresh (a scheduler must not see an older state); each
    trial's spec is left out, as nothing here needs it."""
    return trials_of(session, [sweep_id])[sweep_id]


def trials_of(session: Session, sweep_ids: Iterable[str]) -> dict[str, list[Job]]:
    """sweep id → its trials as `trials` reads them, for all the sweeps in one query."""
    found: dict[str, list[Job]] = {sweep_id: [] for sweep_id in sweep_ids}
    query = select(Job).options(defer(Job.spec)).where(Job.sweep_id.in_(list(found))).order_by(Job.trial_number)
    for trial in session.scalars(query.execution_options(populate_existing=True)):
        found[str(trial.sweep_id)].append(trial)
    return found


def objective_curves(session: Session, sweep_id: str, metric: str) -> dict[str, dict[int, float | None]]:
    """job id → epoch → that epoch's value of `metric`, for every trial of the sweep."""
    query = (
        select(EpochMetrics.job_id, EpochMetrics.epoch, EpochMetrics.metrics[metric].as_float())
        .join(Job, Job.id == EpochMetrics.job_id)
        .where(Job.sweep_id == sweep_id)
    )
    curves: dict[str, dict[int, float | None]] = defaultdict(dict)
    for job_id, epoch, value in session.execute(query):
        curves[job_id][epoch] = value
    return curves


def trial_counts(session: Session, sweep_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """sweep id → {job status, or `pruned` for a trial the pruner stopped: count}."""
    query = (
        select(Job.sweep_id, Job.status, Job.stop_reason, func.count())
        .where(Job.sweep_id.in_(list(sweep_ids)))
        .group_by(Job.sweep_id, Job.status, Job.stop_reason)
    )
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for sweep_id, status, stop_reason, count in session.execute(query):
        pruned = status == JobStatus.SUCCEEDED and stop_reason == StopReason.PRUNED
        counts[str(sweep_id)][StopReason.PRUNED if pruned else status] += count
    return counts


def finished_trials(session: Session, sweep_ids: Iterable[str]) -> Sequence[Job]:
    """The trials that trained to their end (not pruned): where a sweep's best trial is."""
    query = select(Job).where(
        Job.sweep_id.in_(list(sweep_ids)),
        Job.status == JobStatus.SUCCEEDED,
        Job.stop_reason.is_distinct_from(StopReason.PRUNED),
    )
    return session.scalars(query).all()


def cancel(session: Session, sweep_id: str) -> list[str] | None:
    """Cancel a running sweep and its trials: queued ones at once, running ones at their next heartbeat.
    Returns the trials it changed; None when the sweep had already finished."""
    if not finish(session, sweep_id, SweepStatus.CANCELLED):
        return None
    now = utcnow()
    cancelled = session.execute(
        update(Job)
        .where(Job.sweep_id == sweep_id, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.CANCELLED,
            stop_reason=StopReason.CANCELLED,
            cancel_requested=True,
            finished_at=now,
            updated_at=now,
        )
        .returning(Job.id)
    )
    queued = [row[0] for row in cancelled]
    outbox.job_events(session, queued, WebhookEvent.JOB_CANCELLED)
    running = session.execute(
        update(Job)
        .where(Job.sweep_id == sweep_id, Job.status == JobStatus.RUNNING)
        .values(cancel_requested=True, updated_at=now)
        .returning(Job.id)
    )
    return queued + [row[0] for row in running]


def save_trial_attrs(session: Session, job_id: str, worker_id: str, attrs: dict[str, Any]) -> bool:
    """Record what the pruner keeps about a running trial, only while the worker still holds its lease."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.RUNNING)
        .values(trial_attrs=attrs)
    )
    return _changed(result)


def _changed(result: Any) -> bool:
    return bool(result.rowcount)
