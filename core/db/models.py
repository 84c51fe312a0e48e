"""ORM models. Torch-free: the API and the workers share them. Only Alembic changes the schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, PriorityRank, StrEnumText, UTCDateTime, utcnow
from core.spec.job import Task
from core.spec.labels import DEFAULT_PROJECT, PROJECT_LENGTH
from core.states import (
    AnalysisKind,
    AnalysisStatus,
    DeliveryStatus,
    JobStatus,
    PredictionStatus,
    Priority,
    StopReason,
    SweepKind,
    SweepStatus,
)
from core.tenants.principal import LOCAL_OWNER

OWNER_LENGTH = 100
# Tags are JSONB on PostgreSQL, so that a GIN index answers `tags @> {...}`.
TAGS_TYPE = JSON().with_variant(JSONB(), "postgresql")
# Indexes that migrations make on PostgreSQL only, which these models cannot declare for both databases:
# the GIN index on `spec::jsonb` that answers a `where` with `=` (migration 0019).
POSTGRES_ONLY_INDEXES = frozenset({"ix_jobs_spec_jsonb"})


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), default=LOCAL_OWNER)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[JobStatus] = mapped_column(StrEnumText(JobStatus, 16))
    priority: Mapped[Priority] = mapped_column(PriorityRank, default=Priority.NORMAL)
    task: Mapped[Task] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    epochs_completed: Mapped[int] = mapped_column(Integer, default=0)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    best_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    test_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    stop_reason: Mapped[StopReason | None] = mapped_column(StrEnumText(StopReason, 32))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(200))  # the worker holding the lease
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    device: Mapped[str | None] = mapped_column(String(32))
    # What reproduces the job: the stored spec's hash (at submission), and the hash of the arrays it trained on
    # and the versions and machine it trained with (by the worker, when it starts).
    spec_hash: Mapped[str | None] = mapped_column(String(71))
    data_hash: Mapped[str | None] = mapped_column(String(71))
    environment: Mapped[dict[str, str] | None] = mapped_column(JSON)
    rerun_of: Mapped[str | None] = mapped_column(String(36))  # the job this one reruns
    project: Mapped[str] = mapped_column(String(PROJECT_LENGTH), default=DEFAULT_PROJECT)
    tags: Mapped[dict[str, str]] = mapped_column(TAGS_TYPE, default=dict)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    # A sweep's trial: its number in the sweep, its parameters by dotted spec path, and what Optuna's
    # sampler and pruner keep about it (core/sweeps/study.py).
    sweep_id: Mapped[str | None] = mapped_column(String(36), ForeignKey("sweeps.id"))
    trial_number: Mapped[int | None] = mapped_column(Integer)
    trial_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trial_attrs: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_jobs_created_at_id", "created_at", "id"),
        Index("ix_jobs_status_created_at_id", "status", "created_at", "id"),
        Index("ix_jobs_status_last_sent_at", "status", "last_sent_at"),
        # A tenant's lists and its quota counts, whatever the other tenants hold.
        Index("ix_jobs_owner_created_at_id", "owner", "created_at", "id"),
        Index("ix_jobs_owner_status_created_at_id", "owner", "status", "created_at", "id"),
        Index("ix_jobs_owner_project_created_at_id", "owner", "project", "created_at", "id"),
        Index("ix_jobs_tags", "tags", postgresql_using="gin", postgresql_ops={"tags": "jsonb_path_ops"}),
        # The scheduler's order within a status (core/jobs/scheduler.py): the claim and the queue positions.
        Index("ix_jobs_status_priority_created_at_id", "status", "priority", "created_at", "id"),
        Index("ix_jobs_started_at", "started_at"),  # the scheduler's jobs started within its usage window
        # Unique: two schedulers can never both create trial n of a sweep.
        Index("ix_jobs_sweep_id_trial_number", "sweep_id", "trial_number", unique=True),
    )


class EpochMetrics(Base):
    """One row per finished epoch; the primary key makes a repeated write of the same epoch impossible."""

    __tablename__ = "epoch_metrics"

    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Dataset(Base):
    """An uploaded table or array/image set, already encoded to numbers; the arrays live in the artifact store."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), default=LOCAL_OWNER)
    name: Mapped[str | None] = mapped_column(String(200))
    filename: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    task: Mapped[Task] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(200))
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[str]] = mapped_column(JSON)
    feature_names: Mapped[list[str]] = mapped_column(JSON)
    categorical_columns: Mapped[list[str]] = mapped_column(JSON)
    input_shape: Mapped[list[int] | None] = mapped_column(JSON)  # (channels, height, width) of images; else null
    class_counts: Mapped[dict[str, int] | None] = mapped_column(JSON)
    imputation: Mapped[str] = mapped_column(String(16))
    size_bytes: Mapped[int] = mapped_column(Integer)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)  # in the artifact store; counts against a quota
    checksum: Mapped[str] = mapped_column(String(71))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_datasets_created_at_id", "created_at", "id"),
        Index("ix_datasets_owner_created_at_id", "owner", "created_at", "id"),
    )


class Sweep(Base):
    """A hyperparameter search; its trials are jobs (Job.sweep_id). `spec` is the normalized request."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), default=LOCAL_OWNER)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SweepStatus] = mapped_column(StrEnumText(SweepStatus, 16))
    kind: Mapped[SweepKind] = mapped_column(StrEnumText(SweepKind, 16), default=SweepKind.SWEEP)
    priority: Mapped[Priority] = mapped_column(PriorityRank, default=Priority.NORMAL)  # its trials'
    task: Mapped[Task] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by every scheduling round: that UPDATE is the row lock that makes schedulers take turns.
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its trials' project and tags (the spec keeps neither).
    project: Mapped[str] = mapped_column(String(PROJECT_LENGTH), default=DEFAULT_PROJECT)
    tags: Mapped[dict[str, str]] = mapped_column(TAGS_TYPE, default=dict)

    __table_args__ = (
        Index("ix_sweeps_created_at_id", "created_at", "id"),
        Index("ix_sweeps_status_created_at_id", "status", "created_at", "id"),
        Index("ix_sweeps_owner_created_at_id", "owner", "created_at", "id"),
        Index("ix_sweeps_kind_owner_created_at_id", "kind", "owner", "created_at", "id"),
    )


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` for one creating route: what it was sent with and what it created.

    The primary key is what lets two concurrent requests with the same key create one resource; it
    includes the owner, so one tenant's key never replays another's resource.
    """

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), primary_key=True, default=LOCAL_OWNER)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    route: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)


class ApiKey(Base):
    """An API key: its owner, whether it is an admin's, and the SHA-256 digest of the secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    shown: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OwnerLimits(Base):
    """One owner's overrides of the server's limits; a null column keeps the server's value."""

    __tablename__ = "owner_limits"

    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), primary_key=True)
    max_queued_jobs: Mapped[int | None] = mapped_column(Integer)
    max_running_jobs: Mapped[int | None] = mapped_column(Integer)
    max_model_parameters: Mapped[int | None] = mapped_column(Integer)
    max_epochs: Mapped[int | None] = mapped_column(Integer)
    max_upload_bytes: Mapped[int | None] = mapped_column(Integer)
    max_upload_rows: Mapped[int | None] = mapped_column(Integer)
    max_storage_bytes: Mapped[int | None] = mapped_column(BigInteger)
    max_priority: Mapped[Priority | None] = mapped_column(PriorityRank)
    weight: Mapped[float | None] = mapped_column(Float)  # the owner's fair share of the workers; null is 1


class Analysis(Base):
    """What a worker computed about a job after it trained: one row per job and kind, its result as data."""

    __tablename__ = "analyses"

    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[AnalysisKind] = mapped_column(StrEnumText(AnalysisKind, 16), primary_key=True)
    status: Mapped[AnalysisStatus] = mapped_column(StrEnumText(AnalysisStatus, 16))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Model(Base):
    """Weights to start from or predict with: uploaded with the architecture they fit, or saved from a job.
    The weights (and, saved from a job, its ONNX export) live in the artifact store."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), default=LOCAL_OWNER)
    name: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))  # "upload" or "job"
    job_id: Mapped[str | None] = mapped_column(String(36))  # the job it was saved from
    model: Mapped[dict[str, Any]] = mapped_column(JSON)  # the spec's `model` block
    input_shape: Mapped[list[int]] = mapped_column(JSON)
    outputs: Mapped[int] = mapped_column(Integer)
    task: Mapped[str | None] = mapped_column(String(16))  # known for a job's model
    class_names: Mapped[list[str] | None] = mapped_column(JSON)
    parameters: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    checksum: Mapped[str] = mapped_column(String(71))
    predictable: Mapped[bool] = mapped_column(default=False)  # it has an ONNX export to predict with
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_models_created_at_id", "created_at", "id"),
        Index("ix_models_owner_created_at_id", "owner", "created_at", "id"),
    )


class Prediction(Base):
    """A batch prediction: rows parsed by the API, answered by a worker with a job's or a model's ONNX export,
    written as a CSV file. The rows and the answers live in the artifact store."""

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), default=LOCAL_OWNER)
    job_id: Mapped[str | None] = mapped_column(String(36))  # whose model answers: a job's ...
    model_id: Mapped[str | None] = mapped_column(String(36))  # ... or a saved model's
    status: Mapped[PredictionStatus] = mapped_column(StrEnumText(PredictionStatus, 16))
    rows: Mapped[int] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobLog(Base):
    """One of a job's worker-side log lines, numbered from 1 in the order they were written."""

    __tablename__ = "job_logs"

    job_id: Mapped[str] = mapped_column(String(36), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(8))
    logger: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)


class Webhook(Base):
    """A URL that is sent the events it subscribes to, of its owner's jobs and sweeps, signed with `secret`
    (kept as it is: signing needs it)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(OWNER_LENGTH), default=LOCAL_OWNER)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    # {"metric", "op", "value"}: set exactly when `events` has metric.threshold (core/webhooks/thresholds.py)
    threshold: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    secret: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_webhooks_owner_created_at_id", "owner", "created_at", "id"),)


class WebhookDelivery(Base):
    """One event for one webhook: written in the transaction that changed the job or sweep (an outbox), then
    sent by a worker that holds its lease, and sent again, later each time, until it is answered 2xx or its
    attempts run out. `attempt_log` has one entry per attempt: when, the status code or the error, how long."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(36), ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))  # the same for every webhook the event goes to
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the body sent, fixed when the event happened
    status: Mapped[DeliveryStatus] = mapped_column(StrEnumText(DeliveryStatus, 16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    worker_id: Mapped[str | None] = mapped_column(String(200))  # the worker holding the lease
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set only on a metric.threshold event, which the unique index lets each webhook have once per job.
    job_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_created_at_id", "webhook_id", "created_at", "id"),
        Index("ix_webhook_deliveries_webhook_id_job_id", "webhook_id", "job_id", unique=True),
    )
