"""What the sweeps API does, and the scheduler that turns a sweep into trials. Services only flush.

`schedule` is the one place trials are created. The API calls it when a sweep is submitted (the first
batch), a worker after each trial it ran has ended, and every worker's reconciler on its rounds (for
trials that ended without a worker: cancelled while queued, failed for lost workers, or a worker killed
between finishing a trial and scheduling). It takes the sweep's row lock first, so schedulers racing for
the same sweep take turns and each sees the trials the others made, then its owner's (tenants.limits.hold), so
trials and the owner's other submissions count against one job quota in turn.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import optuna
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.models import Job, Sweep
from service.errors import ApiError, Conflict, FieldError, NotFound, invalid_cursor_is_422
from service.jobs import admission, quotas
from service.jobs import repository as jobs_repository
from service.jobs import service as jobs_service
from service.queue import TaskQueue
from service.settings import Settings
from service.spec import Task
from service.sweeps import repository, space, study
from service.sweeps.repository import ACTIVE
from service.sweeps.schemas import SweepCreate, SweepList, SweepRead, TrialCounts, TrialList, TrialRead
from service.tenants import limits as owner_limits
from service.tenants.limits import Limits
from service.tenants.principal import Principal


def create(session: Session, queue: TaskQueue, body: SweepCreate, settings: Settings, principal: Principal) -> Sweep:
    """Check the sweep against its owner's quota, and every point of its space (the grid's exactly, each
    range's ends) as a job of its owner; store it, and queue its first trials. Its trials are its owner's
    jobs and act as that owner, an admin's included: they reach only the owner's data sets and jobs."""
    owner = principal.owner
    limits = admission.hold_for_one(session, settings, owner)
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
            status="running",
            task=base.task,
            spec=body.model_dump(mode="json"),
        ),
    )
    schedule(session, queue, settings, sweep.id)
    return sweep


def _invalid(errors: list[FieldError]) -> ApiError:
    return ApiError("; ".join(f"{e.field}: {e.message}" for e in errors), errors, status=422)


def schedule(session: Session, queue: TaskQueue, settings: Settings, sweep_id: str) -> list[Job]:
    """Create the sweep's next trials, up to `max_parallel` queued or running, `max_trials` in all, and
    the room its owner's job quota has now (under the owner's lock, as for any submission; the rest come
    at a later call), and finish the sweep once every trial has ended. Returns the trials created."""
    sweep = repository.lock(session, sweep_id)
    if sweep is None:
        return []
    body = SweepCreate.model_validate(sweep.spec)
    trials = list(repository.trials(session, sweep_id))
    active = sum(trial.status in ACTIVE for trial in trials)
    created: list[Job] = []
    if len(trials) < body.trial_budget and active < body.max_parallel:
        created = _new_trials(session, queue, settings, sweep, body, trials, room=body.max_parallel - active)
        trials += created
        active += sum(trial.status in ACTIVE for trial in created)
    if len(trials) >= body.trial_budget and active == 0:
        repository.finish(session, sweep_id, "succeeded" if best_trial(trials, body) else "failed")
    return created


def _new_trials(
    session: Session,
    queue: TaskQueue,
    settings: Settings,
    sweep: Sweep,
    body: SweepCreate,
    trials: Sequence[Job],
    room: int,
) -> list[Job]:
    """New trials up to the sweep's budget, `room` more active ones, and the room its owner's job quota
    has now (counted under the owner's lock, as for any submission)."""
    limits = owner_limits.hold(session, settings, sweep.owner)
    room = min(room, quotas.free_slots(session, sweep.owner, limits))
    if room <= 0:
        return []
    search = rebuild_study(session, sweep, body, trials)
    created: list[Job] = []
    number = len(trials)
    while number < body.trial_budget and room > 0:
        trial = _new_trial(session, queue, settings, limits, sweep, body, search, number)
        created.append(trial)
        number += 1
        room -= trial.status in ACTIVE
    return created


def rebuild_study(session: Session, sweep: Sweep, body: SweepCreate, trials: Sequence[Job]) -> optuna.Study:
    """The sweep's Optuna study, rebuilt from its trials and their per-epoch objective values."""
    curves = repository.objective_curves(session, sweep.id, body.objective.metric)
    records = [trial_record(trial, curves.get(trial.id, {}), body.objective.metric) for trial in trials]
    return study.rebuild(body, records)


def trial_record(trial: Job, curve: Mapping[int, float | None], metric: str) -> study.TrialRecord:
    objective = objective_of(trial, metric)
    state: study.State
    if trial.status in ACTIVE:
        state = "running"
    elif trial.status == "succeeded" and trial.stop_reason == "pruned":
        state = "pruned"
    elif trial.status == "succeeded" and objective is not None:
        state = "complete"
    else:
        state = "failed"
    assert trial.trial_number is not None, "a trial has a number"
    return study.TrialRecord(
        number=trial.trial_number,
        state=state,
        params=trial.trial_params or {},
        value=objective if state == "complete" else None,
        intermediate=study.intermediate_values(curve),
        attrs=trial.trial_attrs or {},
    )


def _new_trial(
    session: Session,
    queue: TaskQueue,
    settings: Settings,
    limits: Limits,
    sweep: Sweep,
    body: SweepCreate,
    search: optuna.Study,
    number: int,
) -> Job:
    """Trial `number`, admitted and queued as a job of the sweep's owner; a combination of parameters that
    is not a valid spec, or not one the owner may run, becomes a failed trial with the reason (it keeps the
    base spec, the only valid one it has)."""
    proposal = study.propose(search, body)
    name = f"{sweep.name or 'sweep'} #{number}"
    try:
        trial_spec = space.trial_spec(body, proposal.params).model_copy(update={"name": name})
        task = cast(Task, sweep.task)
        job = jobs_service.submit(
            session, queue, admission.admit(session, settings, trial_spec, sweep.owner, limits, task)
        )
    except (ValidationError, ApiError) as exc:
        study.discard(search, proposal)
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc.detail
        job = jobs_repository.add(
            session,
            Job(
                id=str(uuid.uuid4()),
                owner=sweep.owner,
                name=name,
                status="failed",
                task=sweep.task,
                spec=body.base.model_copy(update={"name": name}).model_dump(mode="json"),
                error=f"these parameters do not make a valid spec: {reason}",
                finished_at=utcnow(),
            ),
        )
    job.sweep_id, job.trial_number = sweep.id, number
    job.trial_params, job.trial_attrs = proposal.params, proposal.attrs
    session.flush()
    return job


def prune(session: Session, sweep_id: str, job_id: str, owner: str) -> bool:
    """Whether the pruner stops the running trial `job_id` at its last recorded epoch. What the pruner
    keeps about the trial (a rung reached) is saved while `owner` still holds the trial's lease."""
    sweep = repository.get(session, sweep_id)
    assert sweep is not None, "a trial's sweep is never deleted"
    body = SweepCreate.model_validate(sweep.spec)
    trials = repository.trials(session, sweep_id)
    trial = next(trial for trial in trials if trial.id == job_id)
    pruned, attrs = study.prune(rebuild_study(session, sweep, body, trials), trial.trial_number or 0)
    if attrs != (trial.trial_attrs or {}):
        repository.save_trial_attrs(session, job_id, owner, attrs)
    return pruned


def objective_of(trial: Job, metric: str) -> float | None:
    """The objective metric at the trial's best epoch (the epoch whose weights are kept), if finite."""
    value = (trial.best_metrics or {}).get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def best_trial(trials: Iterable[Job], body: SweepCreate) -> Job | None:
    """The best trial that trained to its end; pruned trials never are (as in Optuna)."""
    finished = [
        trial
        for trial in trials
        if trial.status == "succeeded"
        and trial.stop_reason != "pruned"
        and objective_of(trial, body.objective.metric) is not None
    ]
    return min(finished, key=lambda trial: _rank(trial, body), default=None)


def _rank(trial: Job, body: SweepCreate) -> tuple[float, int]:
    """Sorts best first: by the objective in its direction, then by number; trials without one last."""
    value = objective_of(trial, body.objective.metric)
    if value is None:
        return math.inf, trial.trial_number or 0
    return (-value if body.objective.direction == "maximize" else value), trial.trial_number or 0


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
    with invalid_cursor_is_422():
        sweeps, next_cursor = repository.list_page(
            session, scope=principal.scope, status=status, limit=limit, cursor=cursor
        )
    return SweepList(items=_reads(session, sweeps), next_cursor=next_cursor)


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
        jobs.sort(key=lambda trial: _rank(trial, body))
    items = [trial_read(trial, body.objective.metric) for trial in jobs]
    return TrialList(sweep_id=sweep_id, objective=body.objective, items=items)


def cancel(session: Session, sweep_id: str, principal: Principal) -> SweepRead:
    """Cancel the sweep: no new trial starts, queued ones are cancelled, running ones stop after their batch."""
    sweep = get(session, sweep_id, principal)
    if not repository.cancel(session, sweep_id):
        raise Conflict(f"sweep `{sweep_id}` is already {sweep.status}")
    session.refresh(sweep)
    return read(session, sweep_id, principal)
