"""What the paths API does. A path is stored and scheduled as a grid sweep of its one strength
(`PathCreate.as_sweep`, `Sweep.kind == "path"`); this module adds what makes it a path: its points' numbers,
the best strength and the 1-SE one (`summary.py`), and the table as CSV. Services only flush."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.orm import Session

from core.db.models import Job, Sweep
from core.errors import ApiError, FieldError, NotFound
from core.numbers import finite_or_none
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.path import PathCreate, Strength
from core.spec.sweep import SweepCreate
from core.states import JobStatus, SweepKind
from core.sweeps import repository
from core.tenants.principal import Principal
from service.paths import summary
from service.paths.schemas import PathChoice, PathList, PathPoint, PathRead
from service.sweeps import service as sweeps

CSV_COLUMNS = (
    "value", "job_id", "status", "best_epoch", "val_loss", "val_loss_se", "train_loss", "gap", "weight_l1",
    "weight_l2", "sparsity", "weights_above_threshold",
)  # fmt: skip


def create(session: Session, queue: TaskQueue, body: PathCreate, settings: Settings, principal: Principal) -> Sweep:
    """Check every point as a job of its owner, store the path and queue its first points."""
    try:
        return sweeps.create(session, queue, body.as_sweep(), settings, principal, SweepKind.PATH)
    except ApiError as exc:
        # The sweep names its one parameter's values `parameters.<strength>`; the path calls them `values`.
        source = "values" if body.values is not None else "grid"
        errors = [_renamed(error, body.parameter, source) for error in exc.errors or []]
        raise ApiError("; ".join(f"{e.field}: {e.message}" for e in errors), errors, status=422) from exc


def _renamed(error: FieldError, parameter: str, source: str) -> FieldError:
    field = source if error.field == f"parameters.{parameter}" else error.field
    return FieldError(field=field, message=error.message, type=error.type)


def get(session: Session, path_id: str, principal: Principal) -> Sweep:
    """The path, if this caller may see it; another owner's, or a sweep's id, is a 404."""
    sweep = repository.get(session, path_id)
    if sweep is None or sweep.kind != SweepKind.PATH or not principal.sees(sweep.owner):
        raise NotFound(f"no path `{path_id}`")
    return sweep


def read(session: Session, path_id: str, principal: Principal) -> PathRead:
    path = get(session, path_id, principal)
    return _read(path, repository.trials(session, path.id))


def list_paths(
    session: Session, principal: Principal, *, status: str | None, limit: int, cursor: str | None
) -> PathList:
    paths, next_cursor = sweeps.page(session, principal, SweepKind.PATH, status=status, limit=limit, cursor=cursor)
    trials = repository.trials_of(session, [path.id for path in paths])
    return PathList(items=[_read(path, trials[path.id]) for path in paths], next_cursor=next_cursor)


def cancel(session: Session, path_id: str, principal: Principal) -> PathRead:
    get(session, path_id, principal)
    sweeps.cancel(session, path_id, principal)
    return read(session, path_id, principal)


def as_csv(path: PathRead) -> str:
    """One row per point, then the test metrics' columns; the best and 1-SE points marked."""
    test_keys = sorted({key for point in path.points for key in point.test_metrics or {}})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"test_{key}" for key in test_keys), "chosen"])
    for point in path.points:
        row = point.model_dump()
        chosen = [name for name, choice in (("best", path.best), ("one_se", path.one_se)) if _is(choice, point)]
        writer.writerow(
            [_cell(row[key]) for key in CSV_COLUMNS]
            + [_cell((point.test_metrics or {}).get(key)) for key in test_keys]
            + [" ".join(chosen)]
        )
    return out.getvalue()


def _read(path: Sweep, trials: Sequence[Job]) -> PathRead:
    body = SweepCreate.model_validate(path.spec)
    ((parameter, values),) = body.parameters.items()
    strengths = [float(cast(float, value)) for value in values.values or []]
    points = sorted((_point(trial, parameter) for trial in trials), key=lambda point: strengths.index(point.value))
    answer = summary.choose(
        [summary.Point(p.value, p.val_loss, p.val_loss_se, p.status == JobStatus.SUCCEEDED) for p in points]
    )
    by_value = {point.value: point for point in points}
    return PathRead(
        id=path.id,
        name=path.name,
        owner=path.owner,
        status=path.status,
        task=path.task,
        parameter=cast(Strength, parameter),  # a path's sweep varies one of the strengths
        values=strengths,
        warm_start=body.warm_start,
        created_at=path.created_at,
        finished_at=path.finished_at,
        points=points,
        best=_choice(by_value, answer.best),
        one_se=_choice(by_value, answer.one_se),
        one_se_bound=answer.bound,
    )


def _point(trial: Job, parameter: str) -> PathPoint:
    best = trial.best_metrics or {}
    val_loss, data_loss = finite_or_none(best.get("val_loss")), finite_or_none(best.get("data_loss"))
    above = finite_or_none(best.get("weights_above_threshold"))
    return PathPoint(
        value=float((trial.trial_params or {})[parameter]),
        job_id=trial.id,
        status=trial.status,
        best_epoch=trial.best_epoch,
        val_loss=val_loss,
        val_loss_se=finite_or_none(best.get("val_loss_se")),
        train_loss=finite_or_none(best.get("train_loss")),
        gap=None if val_loss is None or data_loss is None else val_loss - data_loss,
        weight_l1=finite_or_none(best.get("weight_l1")),
        weight_l2=finite_or_none(best.get("weight_l2")),
        sparsity=finite_or_none(best.get("sparsity")),
        weights_above_threshold=None if above is None else round(above),
        test_metrics=trial.test_metrics,
    )


def _choice(by_value: dict[float, PathPoint], chosen: summary.Point | None) -> PathChoice | None:
    if chosen is None or chosen.val_loss is None:
        return None
    return PathChoice(value=chosen.value, job_id=by_value[chosen.value].job_id, val_loss=chosen.val_loss)


def _is(choice: PathChoice | None, point: PathPoint) -> bool:
    return choice is not None and choice.job_id == point.job_id


def _cell(value: Any) -> Any:
    return "" if value is None else value
