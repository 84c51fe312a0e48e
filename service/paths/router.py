"""HTTP routes for /v1/paths: regularization paths."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Response, status

from core.spec.path import PathCreate
from service.deps import QueueDep, SessionDep, SettingsDep
from service.errors import IDEMPOTENCY_CONFLICT, TOO_MANY_JOBS, Problem
from service.idempotency.deps import IdempotentCreateDep
from service.paths import service
from service.paths.schemas import PathList, PathRead
from service.states import SweepStatusValue
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/paths", tags=["paths"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No path with this id."}}
PathId = Annotated[str, Path(description="The path's `id`, as POST /v1/paths returned it.")]
EXAMPLE_PATH = {
    "name": "digits-l2-path",
    "base": {
        "dataset": {"name": "digits"},
        "model": {"hidden_layers": [128, 64]},
        "optimizer": {"name": "adam", "lr": 0.001},
        "training": {"epochs": 30, "batch_size": 64, "seed": 42},
        "early_stopping": {"patience": 5, "restore_best_weights": True},
    },
    "parameter": "regularization.l2",
    "grid": {"scale": "log", "low": 1e-5, "high": 1e-1, "points": 10},
}
CSV_EXAMPLE = "value,job_id,status,best_epoch,val_loss,val_loss_se,...\n0.1,3f2a...,succeeded,30,0.52,0.02,...\n"


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_path",
    responses={
        409: IDEMPOTENCY_CONFLICT,
        422: {"model": Problem, "description": "The path is invalid; `errors` names each field (`values`, `grid`)."},
        429: TOO_MANY_JOBS,
    },
)
async def create_path(
    body: Annotated[PathCreate, Body(openapi_examples={"l2 on digits": {"value": EXAMPLE_PATH}})],
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    create_once: IdempotentCreateDep,
) -> PathRead:
    """Start a regularization path: the base spec trained at each value of one strength (`regularization.l1`,
    `regularization.l2`, `model.dropout` or `optimizer.weight_decay`), each point an ordinary job of yours.
    `grid` gives `points` values from `high` down to `low` (10 by default, at most 50); `values` lists them.
    With `warm_start`, each point starts from the previous point's kept weights and they train one at a time."""
    return await create_once.answer(
        "paths",
        (body.model_dump(mode="json"),),
        create=lambda: service.create(session, queue, body, settings, principal),
        load=lambda path_id: service.get(session, path_id, principal),
        read=lambda path: service.read(session, path.id, principal),
    )


@router.get("", operation_id="list_paths")
def list_paths(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    status: Annotated[SweepStatusValue | None, Query(description="Only paths in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> PathList:
    """List your paths (an admin: everyone's), newest first, one page at a time."""
    return service.list_paths(
        session, principal, status=status, limit=min(limit, settings.max_page_size), cursor=cursor
    )


@router.get(
    "/{path_id}",
    operation_id="get_path",
    response_model=PathRead,
    responses={**NOT_FOUND, 200: {"content": {"text/csv": {"example": CSV_EXAMPLE}}}},
)
def get_path(
    path_id: PathId,
    session: SessionDep,
    principal: PrincipalDep,
    format: Annotated[Literal["json", "csv"], Query(description="`csv`: one row per point.")] = "json",
) -> PathRead | Response:
    """Each point's validation loss (with its standard error), training loss, gap, weight norms, sparsity and test
    metrics; the strength with the lowest validation loss (`best`) and the largest within one standard error of
    it (`one_se`, the 1-SE rule). Live while the points train."""
    path = service.read(session, path_id, principal)
    if format == "csv":
        return Response(service.as_csv(path), media_type="text/csv")
    return path


@router.post(
    "/{path_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="cancel_path",
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "The path has already finished."}},
)
def cancel_path(path_id: PathId, session: SessionDep, principal: PrincipalDep) -> PathRead:
    """Cancel a path: queued points never start, running ones stop after their current batch."""
    return service.cancel(session, path_id, principal)
