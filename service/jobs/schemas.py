"""What the jobs API reads and writes. Field names here are a public contract."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from core.spec.job import JobSpec
from core.spec.labels import DEFAULT_PROJECT, LABEL_FIELDS, Labels, Tags
from core.states import Priority
from service.states import JobStatusValue, PriorityValue


class JobCreate(JobSpec, Labels):
    """What POST /v1/jobs takes: a job spec, and beside its fields the job's `project` and `tags`."""

    @property
    def spec(self) -> JobSpec:
        """The spec alone, as the job stores it (already validated: not checked again)."""
        return JobSpec.model_construct(
            self.model_fields_set - LABEL_FIELDS, **{name: getattr(self, name) for name in JobSpec.model_fields}
        )


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The job's id, as in `/v1/jobs/{job_id}`.")
    owner: str = Field(description="Who it belongs to: the owner of the API key that created it.")
    name: str | None = Field(description="The spec's `name`, a label for people.")
    status: JobStatusValue = Field(
        description="`queued`, then `running`, then one of `succeeded`, `failed` and `cancelled`."
    )
    priority: PriorityValue = Field(
        Priority.NORMAL,
        description="The spec's `priority` (a sweep's trial: the sweep's): how soon the scheduler starts it.",
    )
    task: Literal["classification", "regression"] = Field(description="Decided by the data set.")
    spec: JobSpec = Field(description="The normalized spec: what was sent, with every default filled in.")
    created_at: datetime = Field(description="When it was submitted.")
    started_at: datetime | None = Field(description="When a worker started it; null while queued.")
    finished_at: datetime | None = Field(description="When it ended; null until then.")
    epochs_completed: int = Field(description="Epochs trained so far.")
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
    cancel_requested: bool = Field(description="A cancel was asked for; a running job stops after its batch.")
    sweep_id: str | None = Field(None, description="The sweep this job is a trial of, if any.")
    trial_number: int | None = Field(None, description="Its number among the sweep's trials, from 0.")
    trial_params: dict[str, JsonValue] | None = Field(None, description="The trial's parameters, by spec path.")
    spec_hash: str | None = Field(
        None, description="`sha256:` and the digest of `spec` as canonical JSON: equal specs, equal hashes."
    )
    data_hash: str | None = Field(
        None,
        description="`sha256:` and the digest of the arrays trained, validated and tested on (split and "
        "standardized), once a worker has loaded them: the same data, split and seed give the same hash.",
    )
    environment: dict[str, str] | None = Field(
        None,
        description="What it trained with, once a worker has started it: `steadyfit`, `torch`, `numpy` and "
        "`python` versions, `device` (the GPU, or the CPU model), `host`, `portable_numerics`.",
    )
    rerun_of: str | None = Field(None, description="The job this one reruns (POST /v1/jobs/{id}/rerun).")
    project: str = Field(
        DEFAULT_PROJECT, description="The project it belongs to, as submitted (a sweep's trial: the sweep's)."
    )
    tags: Tags = Field(
        default_factory=dict,
        description="Its tags, as submitted (a sweep's trial: the sweep's).",
        examples=[{"team": "red"}],
    )


class JobDetail(JobRead):
    """A job as GET /v1/jobs/{job_id} shows it: with its place in the queue while it waits. Both are read at
    each request without `If-None-Match`; the ETag is the job's own, so a conditional request is a 304 while
    the job is unchanged, even when its place has moved."""

    queue_position: int | None = Field(
        None,
        description="While queued: its place, from 1, in the order the workers will take the queued jobs if none "
        "ends meanwhile (priority, then fair share between owners, then age); null otherwise.",
        examples=[3],
    )
    estimated_start: datetime | None = Field(
        None,
        description="While queued: when it may start, from the mean run time of the last 20 succeeded jobs and "
        "the number of running jobs (`queue_position` * mean ÷ running); null otherwise, or before any job "
        "has succeeded.",
        examples=["2026-12-04T09:30:00Z"],
    )


class JobList(BaseModel):
    items: list[JobRead] = Field(description="This page's jobs, newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class MetricsPage(BaseModel):
    job_id: str = Field(description="The job these epochs belong to.")
    status: JobStatusValue = Field(description="The job's status when the page was read; poll again until it is final.")
    items: list[dict[str, float | int | None]] = Field(
        description="One object per epoch, oldest first: `epoch` (from 1) and that epoch's metrics. "
        "A null value is a non-finite number (a diverging loss)."
    )


class JobLogLine(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int = Field(description="The line's number, from 1; pass the last one seen as `after`.")
    created_at: datetime = Field(description="When the worker wrote it.")
    level: str = Field(description="`INFO`, `WARNING`, `ERROR`, …")
    logger: str = Field(description="Which part wrote it: `workers.runner`, `py.warnings`, …")
    message: str = Field(description="The line, with its traceback where it has one.")


class JobLogPage(BaseModel):
    job_id: str = Field(description="The job these lines belong to.")
    status: JobStatusValue = Field(description="The job's status when the page was read; follow until it is final.")
    items: list[JobLogLine] = Field(description="The lines after `after`, oldest first.")


class ArtifactRead(BaseModel):
    name: str = Field(description="Download it at `/v1/jobs/{id}/artifacts/{name}`.")
    size_bytes: int = Field(description="The file's size.")
    media_type: str = Field(description="The file's type, e.g. `application/octet-stream`.")


class ArtifactList(BaseModel):
    job_id: str = Field(description="The job that produced them.")
    items: list[ArtifactRead] = Field(description="Every file, by name.")
