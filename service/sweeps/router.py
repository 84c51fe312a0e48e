"""HTTP routes for /v1/sweeps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, status

from core.spec.sweep import SweepCreate
from service.deps import QueueDep, SessionDep, SettingsDep
from service.errors import IDEMPOTENCY_CONFLICT, TOO_MANY_JOBS, Problem
from service.idempotency.deps import IdempotentCreateDep
from service.jobs.reads import JobReadsDep
from service.states import SweepStatusValue
from service.sweeps import service
from service.sweeps.schemas import ImportanceRead, SweepList, SweepRead, TrialList
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No sweep with this id."}}
SweepId = Annotated[str, Path(description="The sweep's `id`, as POST /v1/sweeps returned it.")]
EXAMPLE_SWEEP = {
    "name": "digits-regularization",
    "base": {
        "dataset": {"name": "digits"},
        "model": {"hidden_layers": [128, 64], "dropout": 0.2, "batch_norm": True},
        "optimizer": {"name": "adam", "lr": 0.001},
        "training": {"epochs": 27, "batch_size": 64, "seed": 42},
    },
    "parameters": {
        "model.dropout": {"values": [0.0, 0.2, 0.5]},
        "regularization.l2": {"log_uniform": [1e-6, 1e-2]},
        "optimizer.lr": {"log_uniform": [1e-4, 1e-1]},
    },
    "algorithm": "tpe",
    "objective": {"metric": "val_loss", "mode": "min"},
    "max_trials": 30,
    "max_parallel": 4,
    "pruner": {"name": "hyperband", "min_epochs": 3},
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_sweep",
    responses={
        409: IDEMPOTENCY_CONFLICT,
        422: {"model": Problem, "description": "The sweep is invalid; `errors` names each parameter."},
        429: TOO_MANY_JOBS,
    },
)
async def create_sweep(
    body: Annotated[SweepCreate, Body(openapi_examples={"digits": {"value": EXAMPLE_SWEEP}})],
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    create_once: IdempotentCreateDep,
) -> SweepRead:
    """Start a hyperparameter search. Its first trials are queued at once; each trial is a job."""
    return await create_once.answer(
        "sweeps",
        (body.model_dump(mode="json"),),
        create=lambda: service.create(session, queue, body, settings, principal),
        load=lambda sweep_id: service.get(session, sweep_id, principal),
        read=lambda sweep: service.read(session, sweep.id, principal),
    )


@router.get("", operation_id="list_sweeps")
def list_sweeps(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    status: Annotated[SweepStatusValue | None, Query(description="Only sweeps in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> SweepList:
    """List your sweeps (an admin: everyone's), newest first, one page at a time."""
    return service.list_sweeps(
        session, principal, status=status, limit=min(limit, settings.max_page_size), cursor=cursor
    )


@router.get("/{sweep_id}", operation_id="get_sweep", responses=NOT_FOUND)
def get_sweep(sweep_id: SweepId, session: SessionDep, principal: PrincipalDep) -> SweepRead:
    """A sweep's status, its trials counted by state, and its best trial with parameters and objective."""
    return service.read(session, sweep_id, principal)


@router.get("/{sweep_id}/trials", operation_id="list_sweep_trials", responses=NOT_FOUND)
def list_sweep_trials(
    sweep_id: SweepId,
    session: SessionDep,
    principal: PrincipalDep,
    sort: Annotated[
        Literal["number", "objective"],
        Query(description="`objective`: best first, trials without an objective last (the leaderboard)."),
    ] = "number",
) -> TrialList:
    """Every trial: parameters, objective, epochs run, stop reason."""
    return service.trials(session, sweep_id, principal, sort=sort)


@router.get(
    "/{sweep_id}/importance",
    operation_id="get_sweep_importance",
    responses={
        **NOT_FOUND,
        409: {"model": Problem, "description": "Fewer than 5 trials have trained to their end."},
    },
)
def get_sweep_importance(sweep_id: SweepId, session: SessionDep, principal: PrincipalDep) -> ImportanceRead:
    """Which parameters moved the objective: each one's share of its variance over the trials that trained to
    their end, by Optuna's fANOVA evaluator (seeded by the sweep's seed, so the same trials give the same
    shares). Available once 5 trials have completed, and updated as more do."""
    return service.importance(session, sweep_id, principal)


@router.post(
    "/{sweep_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="cancel_sweep",
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "The sweep has already finished."}},
)
def cancel_sweep(sweep_id: SweepId, session: SessionDep, reads: JobReadsDep, principal: PrincipalDep) -> SweepRead:
    """Cancel a sweep: queued trials never start, running ones stop after their current batch."""
    sweep, trials = service.cancel(session, sweep_id, principal)
    for trial in trials:  # this process's kept ETags and pages show them changed as soon as the cancel commits
        reads.forget_on_commit(session, trial)
    return sweep
