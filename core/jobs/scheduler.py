"""The scheduler: which job a free worker takes next, where a queued job stands, and when it may start.

A worker that gets a "train" message takes the first claimable job (core/jobs/repository.claimable: queued,
or running with an expired lease, and under `max_attempts`) in this order, whichever job the message named:

1. Priority: every `high` job before any `normal` one, every `normal` one before any `low` one.
2. Fair share: within a priority, the job of the owner with the least use for its weight (use ÷ weight; the
   weight is the owner's `weight` limit, 1 when unset). An owner's use is its jobs that are running or
   started in the last `USAGE_WINDOW` (60 s): counting the recent starts too is what makes owners take turns
   where jobs are short, or where a single worker claims each job only once the last has ended, when no job
   of anyone's is running at the claim. An owner of weight 2 keeps going first until it uses twice as much
   as an owner of weight 1.
3. Age: the oldest first (by `created_at`, then by `id`, so that the order is total).

The claim is one conditional UPDATE of the row a subquery picks. On PostgreSQL the subquery locks the row it
picks (`FOR UPDATE SKIP LOCKED`), so workers claiming at once take different jobs and none waits for
another; on SQLite the statement runs under the database's one write lock. The UPDATE checks again that the
job is claimable, so a job is claimed by one worker at a time however the picks race.

A queued job's position is where rules 1-3 would take it if no job ended meanwhile. Each job taken adds one
to its owner's use, so an owner's k-th queued job (from 0, in order of priority and age) goes at a
share of (use + k) ÷ weight, and sorting the queued jobs by (priority, that share, age) gives the order
in which the workers would take them one after another: position 1 is the job the next claim takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Subquery, cast, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from core.db.base import utcnow
from core.db.models import Job, OwnerLimits
from core.jobs.repository import claimable, claimed, claimed_values
from core.states import ACTIVE, JobStatus
from core.tenants.limits import DEFAULT_WEIGHT

RECENT_JOBS = 20  # the succeeded jobs whose run times estimate the next ones'
USAGE_WINDOW = timedelta(seconds=60)  # a job started within it counts toward its owner's use (rule 2)


def claim_next(session: Session, worker_id: str, lease_seconds: float, max_attempts: int) -> Job | None:
    """Claim the first claimable job in the scheduler's order for this worker; None when there is none."""
    now = utcnow()
    candidate = aliased(Job, name="candidate")
    running = _use_per_owner(now)
    pick = (
        select(candidate.id)
        .outerjoin(running, running.c.owner == candidate.owner)
        .outerjoin(OwnerLimits, OwnerLimits.owner == candidate.owner)
        .where(claimable(candidate, now, max_attempts))
        .order_by(candidate.priority.desc(), _share(running.c.running), candidate.created_at, candidate.id)
        .limit(1)
        .with_for_update(of=candidate, skip_locked=True)
        .scalar_subquery()
    )
    picked = session.execute(
        update(Job)
        .where(Job.id == pick, claimable(Job, now, max_attempts))
        .values(**claimed_values(worker_id, now, lease_seconds))
        .returning(Job.id)
    ).scalar()
    return None if picked is None else claimed(session, picked)


def _use_per_owner(now: datetime) -> Subquery:
    """Rule 2's use: each owner's jobs running or started within `USAGE_WINDOW` of `now`."""
    used = aliased(Job, name="used_job")
    return (
        select(used.owner, func.count().label("running"))
        .where(or_(used.status == JobStatus.RUNNING, used.started_at >= now - USAGE_WINDOW))
        .group_by(used.owner)
        .subquery("use_per_owner")
    )


def _share(running: Any, taken_before: Any = 0) -> ColumnElement[Any]:
    """Rule 2's key: the owner's use (and the jobs it would have taken before this one) ÷ its weight;
    needs `owner_limits` joined."""
    weight = func.coalesce(OwnerLimits.weight, DEFAULT_WEIGHT)
    return cast(func.coalesce(running, 0) + taken_before, Float) / weight


def _queued_in_order() -> Subquery:
    """Every queued job's id, owner and position (from 1) in the scheduler's order (the module's rules)."""
    running = _use_per_owner(utcnow())
    taken_before = (
        func.row_number().over(partition_by=Job.owner, order_by=(Job.priority.desc(), Job.created_at, Job.id)) - 1
    )
    shares = (
        select(Job.id, Job.owner, Job.priority, Job.created_at, _share(running.c.running, taken_before).label("share"))
        .outerjoin(running, running.c.owner == Job.owner)
        .outerjoin(OwnerLimits, OwnerLimits.owner == Job.owner)
        .where(Job.status == JobStatus.QUEUED)
        .subquery("shares")
    )
    order = (shares.c.priority.desc(), shares.c.share, shares.c.created_at, shares.c.id)
    position = func.row_number().over(order_by=order).label("position")
    return select(shares.c.id, shares.c.owner, position).subquery("queued_in_order")


def queue_position(session: Session, job_id: str) -> int | None:
    """The job's position among the queued jobs, from 1; None when it is not queued."""
    ordered = _queued_in_order()
    position = session.scalar(select(ordered.c.position).where(ordered.c.id == job_id))
    return None if position is None else int(position)


def queue_order(session: Session) -> list[str]:
    """The ids of the queued jobs in the order the workers would take them."""
    ordered = _queued_in_order()
    return list(session.scalars(select(ordered.c.id).order_by(ordered.c.position)))


@dataclass(frozen=True)
class OwnerQueue:
    owner: str
    queued: int
    running: int


def active_per_owner(session: Session, owner: str | None = None) -> list[OwnerQueue]:
    """Each owner's queued and running jobs (only `owner`'s when given), owners by name."""
    query = select(Job.owner, Job.status, func.count()).where(Job.status.in_(ACTIVE)).group_by(Job.owner, Job.status)
    if owner is not None:
        query = query.where(Job.owner == owner)
    counts: dict[str, dict[JobStatus, int]] = {}
    for name, status, count in session.execute(query):
        counts.setdefault(name, dict.fromkeys(ACTIVE, 0))[status] = int(count)
    return [
        OwnerQueue(name, found[JobStatus.QUEUED], found[JobStatus.RUNNING]) for name, found in sorted(counts.items())
    ]


def estimated_start(session: Session, position: int, now: datetime | None = None) -> datetime | None:
    """When the job at `position` may start, by this rule:

    1. A job runs for the mean run time (started to finished) of the last `RECENT_JOBS` succeeded jobs;
       with none yet, there is no estimate (None).
    2. The running jobs end one after another at the rate of (running jobs ÷ that mean); with none
       running, as if one were.
    3. The job starts when `position` jobs have ended: `position` * mean ÷ running jobs from now.
    """
    mean = mean_run_seconds(session)
    if mean is None:
        return None
    running = session.scalar(select(func.count()).where(Job.status == JobStatus.RUNNING)) or 0
    return (now or utcnow()) + timedelta(seconds=position * mean / max(running, 1))


def mean_run_seconds(session: Session) -> float | None:
    """Rule 1 of `estimated_start`: the mean run time of the last `RECENT_JOBS` succeeded jobs, by submission."""
    rows = session.execute(
        select(Job.started_at, Job.finished_at)
        .where(Job.status == JobStatus.SUCCEEDED)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(RECENT_JOBS)
    ).all()
    seconds = [(finished - started).total_seconds() for started, finished in rows if started and finished]
    return math.fsum(seconds) / len(seconds) if seconds else None
