"""What the sweeps API reads and writes besides the spec (core/spec/sweep.py). Field names here are a public
contract."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from core.spec.sweep import ObjectiveSpec, SweepCreate
from service.states import JobStatusValue, SweepStatusValue


class TrialRead(BaseModel):
    job_id: str = Field(description="The trial's job: `/v1/jobs/{job_id}` has its spec, metrics and artifacts.")
    number: int = Field(description="Trials count from 0 in the order they were created.")
    status: JobStatusValue = Field(description="The trial job's status.")
    params: dict[str, JsonValue] = Field(description="The parameters of this trial, by dotted spec path.")
    objective: float | None = Field(description="The objective metric at the trial's best epoch so far.")
    epochs_completed: int = Field(description="Epochs trained so far.")
    best_epoch: int | None = Field(description="The epoch whose weights are kept, once there is one.")
    stop_reason: str | None = Field(description="As for jobs, plus `pruned`: stopped early by the pruner.")
    test_metrics: dict[str, float | None] | None = Field(
        description="The test-split metrics, once the trial has trained to its end."
    )


class TrialCounts(BaseModel):
    total: int = Field(0, description="Trials created so far.")
    queued: int = Field(0, description="Waiting for a worker.")
    running: int = Field(0, description="Training now.")
    succeeded: int = Field(0, description="Trained to their end (pruned trials are counted apart).")
    pruned: int = Field(0, description="Stopped early by the pruner.")
    failed: int = Field(0, description="Ended by an error.")
    cancelled: int = Field(0, description="Cancelled, with the sweep or on their own.")


class SweepRead(SweepCreate):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="The sweep's id, as in `/v1/sweeps/{sweep_id}`.")
    owner: str = Field(description="Who it belongs to: the owner of the API key that created it.")
    status: SweepStatusValue = Field(description="`succeeded` once every trial has ended and one has an objective.")
    task: Literal["classification", "regression"] = Field(description="Decided by the base spec's data set.")
    created_at: datetime = Field(description="When the sweep was created.")
    finished_at: datetime | None = Field(description="When its last trial ended; null while it runs.")
    trials: TrialCounts = Field(description="How many trials are in each state.")
    best_trial: TrialRead | None = Field(description="The best trial that trained to its end, once there is one.")


class SweepList(BaseModel):
    items: list[SweepRead] = Field(description="This page's sweeps, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class TrialList(BaseModel):
    sweep_id: str = Field(description="The sweep these trials belong to.")
    objective: ObjectiveSpec = Field(description="The sweep's objective, which ranks the trials.")
    items: list[TrialRead] = Field(description="Every trial, in the order `sort` asks for.")


class ParameterImportance(BaseModel):
    parameter: str = Field(description="The parameter's dotted spec path, as in the sweep's `parameters`.")
    importance: float = Field(description="Its share of the objective's variance, from 0 to 1.")


class ImportanceRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "sweep_id": "6f1c…",
                "objective": {"metric": "val_loss", "mode": "min"},
                "method": "fanova",
                "trials": 24,
                "items": [
                    {"parameter": "optimizer.lr", "importance": 0.71},
                    {"parameter": "model.dropout", "importance": 0.21},
                    {"parameter": "regularization.l2", "importance": 0.08},
                ],
            }
        }
    )

    sweep_id: str = Field(description="The sweep these shares are of.")
    objective: ObjectiveSpec = Field(description="The objective whose variance is shared out.")
    method: Literal["fanova"] = Field(description="Optuna's fANOVA evaluator, seeded by the sweep's seed.")
    trials: int = Field(description="The complete trials it was fitted to (pruned and failed ones are left out).")
    items: list[ParameterImportance] = Field(description="Every parameter, the most important first; they sum to 1.")
