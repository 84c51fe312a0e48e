"""The scheduler that turns a sweep into trials, and the pruner's verdict on a running trial. Only flushes.

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
from collections.abc import Iterable, Mapping, Sequence

import optuna
from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import Job, Sweep
from core.errors import ApiError
from core.jobs import admission, quotas
from core.jobs import repository as jobs_repository
from core.numbers import finite_or_none
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.job import InitFromSpec
from core.spec.labels import Labels
from core.spec.sweep import SweepCreate
from core.states import ACTIVE, JobStatus, StopReason, SweepStatus
from core.sweeps import repository, space, study
from core.tenants import limits as owner_limits
from core.tenants.limits import Limits
from core.webhooks import outbox


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
        repository.finish(session, sweep_id, SweepStatus.SUCCEEDED if best_trial(trials, body) else SweepStatus.FAILED)
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
        start_from = _warm_start_source([*trials, *created]) if body.warm_start else None
        trial = _new_trial(session, queue, settings, limits, sweep, body, search, number, start_from)
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
    elif trial.status == JobStatus.SUCCEEDED and trial.stop_reason == StopReason.PRUNED:
        state = "pruned"
    elif trial.status == JobStatus.SUCCEEDED and objective is not None:
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
    start_from: str | None,
) -> Job:
    """Trial `number`, admitted and queued as a job of the sweep's owner; a combination of parameters that
    is not a valid spec, or not one the owner may run, becomes a failed trial with the reason (it keeps the
    base spec, the only valid one it has). With `start_from`, it starts from that job's kept weights."""
    proposal = study.propose(search, body)
    name = f"{sweep.name or 'sweep'} #{number}"
    try:
        trial_spec = space.trial_spec(body, proposal.params).model_copy(update={"name": name})
        if start_from is not None:
            trial_spec = trial_spec.model_copy(update={"init_from": InitFromSpec(job_id=start_from)})
        admitted = admission.admit(session, settings, trial_spec, sweep.owner, limits, sweep.task)
        job = admission.submit(session, queue, admitted, Labels(project=sweep.project, tags=sweep.tags))
    except (ValidationError, ApiError) as exc:
        study.discard(search, proposal)
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc.detail
        job = jobs_repository.add(
            session,
            Job(
                id=str(uuid.uuid4()),
                owner=sweep.owner,
                name=name,
                status=JobStatus.FAILED,
                task=sweep.task,
                spec=body.base.model_copy(update={"name": name}).model_dump(mode="json"),
                error=f"these parameters do not make a valid spec: {reason}",
                finished_at=utcnow(),
                project=sweep.project,
                tags=sweep.tags,
            ),
        )
    job.sweep_id, job.trial_number = sweep.id, number
    job.trial_params, job.trial_attrs = proposal.params, proposal.attrs
    session.flush()
    if job.status == JobStatus.FAILED:
        outbox.job_ended(session, job.id, JobStatus.FAILED)
    return job


def _warm_start_source(trials: Sequence[Job]) -> str | None:
    """The trial a warm-started sweep's next trial starts from: the last one, by number, that succeeded and
    trained to its end. None before any has (the first trial starts as the base spec says)."""
    finished = [t for t in trials if t.status == JobStatus.SUCCEEDED and t.stop_reason != StopReason.PRUNED]
    return max(finished, key=lambda trial: trial.trial_number or 0).id if finished else None


def prune(session: Session, sweep_id: str, job_id: str, worker_id: str) -> bool:
    """Whether the pruner stops the running trial `job_id` at its last recorded epoch. What the pruner
    keeps about the trial (a rung reached) is saved while the worker `worker_id` still holds the trial's lease."""
    sweep = repository.get(session, sweep_id)
    assert sweep is not None, "a trial's sweep is never deleted"
    body = SweepCreate.model_validate(sweep.spec)
    trials = repository.trials(session, sweep_id)
    trial = next(trial for trial in trials if trial.id == job_id)
    pruned, attrs = study.prune(rebuild_study(session, sweep, body, trials), trial.trial_number or 0)
    if attrs != (trial.trial_attrs or {}):
        repository.save_trial_attrs(session, job_id, worker_id, attrs)
    return pruned


def objective_of(trial: Job, metric: str) -> float | None:
    """The objective metric at the trial's best epoch (the epoch whose weights are kept), if finite."""
    return finite_or_none((trial.best_metrics or {}).get(metric))


def best_trial(trials: Iterable[Job], body: SweepCreate) -> Job | None:
    """The best trial that trained to its end; pruned trials never are (as in Optuna)."""
    finished = [
        trial
        for trial in trials
        if trial.status == JobStatus.SUCCEEDED
        and trial.stop_reason != StopReason.PRUNED
        and objective_of(trial, body.objective.metric) is not None
    ]
    return min(finished, key=lambda trial: rank(trial, body), default=None)


def rank(trial: Job, body: SweepCreate) -> tuple[float, int]:
    """Sorts best first: by the objective in its direction, then by number; trials without one last."""
    value = objective_of(trial, body.objective.metric)
    if value is None:
        return math.inf, trial.trial_number or 0
    return (-value if body.objective.direction == "maximize" else value), trial.trial_number or 0
