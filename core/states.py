"""The states a job and a sweep move through, and why a job stopped. Their values are a public contract:
the API returns them and clients compare against them.

A job: `queued` → `running` → one of `succeeded`, `failed`, `cancelled`. A worker that loses its job hands it
back to `queued` (a retry); nothing leaves a terminal state. A sweep: `running` → one of the same three.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class SweepStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SweepKind(StrEnum):
    """What a sweep row is: a search (`/v1/sweeps`) or a regularization path (`/v1/paths`), a grid of one
    strength whose summary adds the best value and the 1-SE one."""

    SWEEP = "sweep"
    PATH = "path"


class AnalysisKind(StrEnum):
    """What a worker computes about a job after it has trained (workers/analyses/)."""

    ONNX = "onnx"  # the kept model exported to ONNX and checked against torch, for predictions
    PRUNING = "pruning"  # global magnitude pruning of the kept weights at several sparsities
    CONFUSION = "confusion"  # the test split's confusion matrix and per-class scores
    LANDSCAPE = "landscape"  # loss slices, Hessian eigenvalue and trace, sharpness
    LR_RANGE = "lr_range"  # a learning-rate range test of the job's spec


class AnalysisStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class StopReason(StrEnum):
    """Why training ended, for a job that trained (`succeeded` or `cancelled`)."""

    MAX_EPOCHS = "max_epochs"  # trained every epoch the spec asked for
    EARLY_STOPPING = "early_stopping"  # the monitored metric stopped improving for `patience` epochs
    STOPPING_THRESHOLD = "stopping_threshold"  # the monitored metric reached the spec's threshold
    DIVERGED = "diverged"  # a loss became non-finite or passed the divergence threshold
    TIMEOUT = "timeout"  # the wall-clock limit `training.max_wall_seconds`
    CANCELLED = "cancelled"  # a caller cancelled it
    PRUNED = "pruned"  # a sweep's pruner stopped the trial


class Priority(StrEnum):
    """How soon a job is started: the scheduler takes every queued `high` job before any `normal` one, and every
    `normal` one before any `low` one (core/jobs/scheduler.py). An owner may ask for up to its `max_priority`."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """What the database stores and sorts on: the higher, the sooner."""
        return PRIORITY_RANKS[self]


PRIORITY_RANKS = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}


class PredictionStatus(StrEnum):
    """A batch prediction's progress (POST /v1/jobs/{id}/predictions)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEvent(StrEnum):
    """What a webhook may subscribe to: a job's state changes, a sweep's end, and a job's first epoch that
    meets the webhook's threshold."""

    JOB_STARTED = "job.started"  # a worker started the job for the first time
    JOB_SUCCEEDED = "job.succeeded"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    SWEEP_FINISHED = "sweep.finished"  # succeeded, failed or cancelled: `data.status` says which
    METRIC_THRESHOLD = "metric.threshold"  # at most once per webhook and job (core/webhooks/thresholds.py)


class DeliveryStatus(StrEnum):
    """A webhook delivery: `pending` until its receiver answers 2xx (`succeeded`) or its attempts run out
    (`failed`)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
