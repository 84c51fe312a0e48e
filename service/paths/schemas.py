"""What the paths API returns. Field names here are a public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.spec.path import Strength
from service.states import JobStatusValue, SweepStatusValue


class PathPoint(BaseModel):
    """One strength of the path, trained as its own job; its numbers are those of the job's best epoch."""

    value: float = Field(description="The strength this point trained with.")
    job_id: str = Field(description="The point's job: `/v1/jobs/{job_id}` has its spec, metrics and artifacts.")
    status: JobStatusValue = Field(description="The point's job's status.")
    best_epoch: int | None = Field(description="The epoch whose weights are kept.")
    val_loss: float | None = Field(description="Validation loss at the best epoch.")
    val_loss_se: float | None = Field(description="Its standard error, from the per-example validation losses.")
    train_loss: float | None = Field(description="Training loss (data loss + penalty) at the best epoch.")
    gap: float | None = Field(
        description="val_loss minus the training data loss at the best epoch: the generalization gap, penalty "
        "left out so that points with different strengths compare."
    )
    weight_l1: float | None = Field(description="Σ|w| of the Linear/Conv weights at the best epoch.")
    weight_l2: float | None = Field(description="√Σw² of the Linear/Conv weights at the best epoch.")
    sparsity: float | None = Field(description="The fraction of those weights with |w| < 1e-3.")
    weights_above_threshold: int | None = Field(description="How many of those weights have |w| ≥ 1e-3.")
    test_metrics: dict[str, float | None] | None = Field(description="The test split's metrics, once it has ended.")


class PathChoice(BaseModel):
    value: float = Field(description="The strength.")
    job_id: str = Field(description="The point's job.")
    val_loss: float = Field(description="Its validation loss at its best epoch.")


class PathRead(BaseModel):
    id: str = Field(description="The path's id, as in `/v1/paths/{path_id}`.")
    name: str | None = Field(description="A label for people.")
    owner: str = Field(description="Who it belongs to: the owner of the API key that created it.")
    status: SweepStatusValue = Field(
        description="`running` while points are queued or training; then `succeeded` (a point has a validation "
        "loss), `failed` or `cancelled`."
    )
    task: Literal["classification", "regression"] = Field(description="Decided by the base spec's data set.")
    parameter: Strength = Field(description="The strength that varies along the path.")
    values: list[float] = Field(description="The strengths, in the order the points run.")
    warm_start: bool = Field(description="Whether each point started from the previous point's kept weights.")
    created_at: datetime = Field(description="When the path was created.")
    finished_at: datetime | None = Field(description="When its last point ended; null while it runs.")
    points: list[PathPoint] = Field(description="One per strength created so far, in the order of `values`.")
    best: PathChoice | None = Field(description="The point with the lowest validation loss, once one has succeeded.")
    one_se: PathChoice | None = Field(
        description="The largest strength whose validation loss is within one standard error of the best's (the "
        "1-SE rule): the most regularized model that is not clearly worse."
    )
    one_se_bound: float | None = Field(description="The best's validation loss plus its standard error.")


class PathList(BaseModel):
    items: list[PathRead] = Field(description="This page's paths, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
