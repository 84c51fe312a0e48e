"""What the jobs API reads and writes. Field names here are a public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from service.spec import JobSpec

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner: str = Field(description="Who it belongs to: the owner of the API key that created it.")
    name: str | None
    status: JobStatus
    task: Literal["classification", "regression"] = Field(description="Decided by the data set.")
    spec: JobSpec = Field(description="The normalized spec: what was sent, with every default filled in.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    epochs_completed: int
    best_epoch: int | None = Field(description="The epoch whose weights are kept (early stopping's best).")
    best_metrics: dict[str, float | None] | None = Field(description="The per-epoch metrics of best_epoch.")
    test_metrics: dict[str, float | None] | None = Field(
        description="Evaluated once at the end, on the test split, with the kept weights."
    )
    stop_reason: str | None = Field(
        description="early_stopping, stopping_threshold, max_epochs, diverged, cancelled, timeout, pruned (a sweep's "
        "trial stopped by its pruner), …"
    )
    error: str | None = Field(description="Why the job failed.")
    attempts: int = Field(description="How many times a worker has started this job.")
    cancel_requested: bool
    sweep_id: str | None = Field(None, description="The sweep this job is a trial of, if any.")
    trial_number: int | None = Field(None, description="Its number among the sweep's trials, from 0.")
    trial_params: dict[str, JsonValue] | None = Field(None, description="The trial's parameters, by spec path.")


class JobList(BaseModel):
    items: list[JobRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class MetricsPage(BaseModel):
    job_id: str
    status: JobStatus
    items: list[dict[str, float | int | None]] = Field(
        description="One object per epoch, oldest first: `epoch` (from 1) and that epoch's metrics. "
        "A null value is a non-finite number (a diverging loss)."
    )


class ArtifactRead(BaseModel):
    name: str = Field(description="Download it at `/v1/jobs/{id}/artifacts/{name}`.")
    size_bytes: int
    media_type: str


class ArtifactList(BaseModel):
    job_id: str
    items: list[ArtifactRead]
