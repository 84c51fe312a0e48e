"""What the sweeps API does, between the router (HTTP) and the core (the scheduler, the repository).
Services only flush."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from core.db.models import Job, Sweep
from core.errors import ApiError, Conflict, FieldError, NotFound, invalid_cursor_is_422
from core.jobs import admission, quotas
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.labels import LABEL_FIELDS
from core.spec.sweep import SweepCreate
from core.states import Priority, SweepKind, SweepStatus
from core.sweeps import repository, space, study
from core.sweeps.schedule import best_trial, objective_of, rank, schedule, trial_record
from core.tenants.principal import Principal
from service.sweeps.schemas import (
    ImportanceRead,
    ParameterImportance,
    SweepList,
    SweepRead,
    TrialCounts,
    TrialList,
    TrialRead,
)


def create(
    session: Session,
    queue: TaskQueue,
    body: SweepCreate,
    settings: Settings,
    principal: Principal,
    kind: SweepKind = SweepKind.SWEEP,
) -> Sweep:
    """Check the sweep against its owner's quota, and every point of its space (the grid's exactly, each
    range's ends) as a job of its owner; store it, and queue its first trials. Its trials are its owner's
    jobs and act as that owner, an admin's included: they reach only the owner's data sets and jobs."""
    owner = principal.owner
    limits = admission.hold_for_one(session, settings, owner)
    quotas.check_priority(body.priority, limits, "priority")
    body = body.model_copy(update={"base": body.base.model_copy(update={"priority": body.priority})})
    try:
        base = admission.admit(session, settings, body.base, owner, limits)
    except ApiError as exc:
        errors = [FieldError(field=f"base.{e.field}", message=e.message, type=e.type) for e in exc.errors or []]
        raise _invalid(errors) from exc
    body = body.model_copy(update={"base": base.spec})
    errors = space.check(
        body, base.task, lambda spec: admission.admit(session, settings, spec, owner, limits, base.task)
    )
    if errors:
        raise _invalid(errors)
    body = body.model_copy(update={"max_trials": body.trial_budget})
    sweep = repository.add(
        session,
        Sweep(
            id=str(uuid.uuid4()),
            owner=owner,
            name=body.name,
            status=SweepStatus.RUNNING,
            kind=kind,
            priority=Priority(body.priority),
            task=base.task,
            spec=body.model_dump(mode="json", exclude=set(LABEL_FIELDS)),
            project=body.project,
            tags=body.tags,
        ),
    )
    schedule(session, queue, settings, sweep.id)
    return sweep


def _invalid(errors: list[FieldError]) -> ApiError:
    return ApiError("; ".join(f"{e.field}: {e.message}" for e in errors), errors, status=422)


def get(session: Session, sweep_id: str, principal: Principal) -> Sweep:
    """The sweep, if this caller may see it; another owner's is a 404, as if it did not exist."""
    sweep = repository.get(session, sweep_id)
    if sweep is None or not principal.sees(sweep.owner):
        raise NotFound(f"no sweep `{sweep_id}`")
    return sweep


def read(session: Session, sweep_id: str, principal: Principal) -> SweepRead:
    return _reads(session, [get(session, sweep_id, principal)])[0]


def list_sweeps(
    session: Session, principal: Principal, *, status: str | None, limit: int, cursor: str | None
) -> SweepList:
    sweeps, next_cursor = page(session, principal, SweepKind.SWEEP, status=status, limit=limit, cursor=cursor)
    return SweepList(items=_reads(session, sweeps), next_cursor=next_cursor)


def page(
    session: Session, principal: Principal, kind: SweepKind, *, status: str | None, limit: int, cursor: str | None
) -> tuple[Sequence[Sweep], str | None]:
    """A page of the caller's sweeps of `kind`, newest first, and the next page's cursor."""
    with invalid_cursor_is_422():
        return repository.list_page(
            session, scope=principal.scope, status=status, limit=limit, cursor=cursor, kind=kind
        )


def _reads(session: Session, sweeps: Sequence[Sweep]) -> list[SweepRead]:
    """Each sweep with its trial counts and best trial, in two queries for the lot."""
    ids = [sweep.id for sweep in sweeps]
    counts = repository.trial_counts(session, ids)
    finished: dict[str, list[Job]] = defaultdict(list)
    for trial in repository.finished_trials(session, ids):
        finished[trial.sweep_id or ""].append(trial)
    reads = []
    for sweep in sweeps:
        body = SweepCreate.model_validate(sweep.spec)
        best = best_trial(finished[sweep.id], body)
        reads.append(
            SweepRead.model_validate(
                {
                    **sweep.spec,
                    "id": sweep.id,
                    "owner": sweep.owner,
                    "status": sweep.status,
                    "task": sweep.task,
                    "project": sweep.project,
                    "tags": sweep.tags,
                    "created_at": sweep.created_at,
                    "finished_at": sweep.finished_at,
                    "trials": TrialCounts(total=sum(counts[sweep.id].values()), **counts[sweep.id]),
                    "best_trial": None if best is None else trial_read(best, body.objective.metric),
                }
            )
        )
    return reads


def trial_read(trial: Job, metric: str) -> TrialRead:
    return TrialRead(
        job_id=trial.id,
        number=trial.trial_number or 0,
        status=trial.status,
        params=trial.trial_params or {},
        objective=objective_of(trial, metric),
        epochs_completed=trial.epochs_completed,
        best_epoch=trial.best_epoch,
        stop_reason=trial.stop_reason,
        test_metrics=trial.test_metrics,
    )


def trials(session: Session, sweep_id: str, principal: Principal, *, sort: str) -> TrialList:
    """Every trial; `sort=objective` puts the best first (the leaderboard), `number` the oldest."""
    sweep = get(session, sweep_id, principal)
    body = SweepCreate.model_validate(sweep.spec)
    jobs = list(repository.trials(session, sweep_id))
    if sort == "objective":
        jobs.sort(key=lambda trial: rank(trial, body))
    items = [trial_read(trial, body.objective.metric) for trial in jobs]
    return TrialList(sweep_id=sweep_id, objective=body.objective, items=items)


def importance(session: Session, sweep_id: str, principal: Principal) -> ImportanceRead:
    """Each parameter's share of the objective's variance over the complete trials (fANOVA)."""
    sweep = get(session, sweep_id, principal)
    body = SweepCreate.model_validate(sweep.spec)
    complete, shares = parameter_shares(sweep_id, body, repository.trials(session, sweep_id))
    if shares is None:
        raise Conflict(
            f"parameter importance needs {study.MIN_TRIALS_FOR_IMPORTANCE} trials that trained to their end; "
            f"sweep `{sweep_id}` has {complete} so far"
        )
    items = [ParameterImportance(parameter=path, importance=share) for path, share in shares.items()]
    return ImportanceRead(sweep_id=sweep_id, objective=body.objective, method="fanova", trials=complete, items=items)


def parameter_shares(sweep_id: str, body: SweepCreate, trials: Sequence[Job]) -> tuple[int, dict[str, float] | None]:
    """The number of complete trials, and the parameters' shares over them (largest first; None while there are
    fewer than `study.MIN_TRIALS_FOR_IMPORTANCE`)."""
    records = [trial_record(trial, {}, body.objective.metric) for trial in trials]
    complete = tuple((r.number, r.value) for r in records if r.state == "complete")
    if len(complete) < study.MIN_TRIALS_FOR_IMPORTANCE:
        return len(complete), None
    with _importance_lock:
        shares = _importance_cache.get((sweep_id, complete))
    if shares is None:  # a forest per request is a second of CPU: computed again only when a trial completes
        shares = study.importance(body, records)
        with _importance_lock:
            _importance_cache[(sweep_id, complete)] = shares
            while len(_importance_cache) > IMPORTANCE_CACHE_SIZE:
                _importance_cache.pop(next(iter(_importance_cache)))
    return len(complete), shares


IMPORTANCE_CACHE_SIZE = 64
_importance_lock = threading.Lock()
_importance_cache: dict[tuple[str, tuple[tuple[int, float | None], ...]], dict[str, float]] = {}


def cancel(session: Session, sweep_id: str, principal: Principal) -> tuple[SweepRead, list[str]]:
    """Cancel the sweep: no new trial starts, queued ones are cancelled, running ones stop after their batch.
    Returns the sweep and the trials changed."""
    sweep = get(session, sweep_id, principal)
    trials = repository.cancel(session, sweep_id)
    if trials is None:
        raise Conflict(f"sweep `{sweep_id}` is already {sweep.status}")
    session.refresh(sweep)
    return read(session, sweep_id, principal), trials
