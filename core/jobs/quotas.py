"""Limits on what one submission may ask for, checked before anything is queued.

The model's size is counted from the spec alone (no torch), layer by layer as workers/training/model.py
builds it: Linear and Conv2d weights and biases, and batch normalization's scale and shift.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.db.models import Dataset
from core.errors import InvalidSpec, TooManyJobs
from core.jobs import repository
from core.spec.architecture import parameter_count
from core.spec.catalog import CATALOG
from core.spec.job import JobSpec, Task, output_size
from core.states import JobStatus, Priority
from core.tenants.limits import Limits


def free_slots(session: Session, owner: str, limits: Limits) -> int:
    """How many more jobs the owner may queue now: none while its running jobs are at their limit."""
    counts = repository.count_active(session, owner)
    if counts[JobStatus.RUNNING] >= limits.max_running_jobs:
        return 0
    return max(0, limits.max_queued_jobs - counts[JobStatus.QUEUED])


def check_job_quota(session: Session, owner: str, limits: Limits, retry_after_seconds: int) -> None:
    """429 while the owner's queued or running jobs are at their limit."""
    counts = repository.count_active(session, owner)
    if counts[JobStatus.QUEUED] >= limits.max_queued_jobs:
        raise TooManyJobs(
            "max_queued_jobs",
            limits.max_queued_jobs,
            f"{counts[JobStatus.QUEUED]} of your jobs are queued",
            retry_after_seconds,
        )
    if counts[JobStatus.RUNNING] >= limits.max_running_jobs:
        raise TooManyJobs(
            "max_running_jobs",
            limits.max_running_jobs,
            f"{counts[JobStatus.RUNNING]} of your jobs are running",
            retry_after_seconds,
        )


def check_spec_limits(spec: JobSpec, shape: DataShape, limits: Limits) -> None:
    """422 for a spec past the priority, epoch or model-size limits. `spec` has its loss resolved (with_task)."""
    check_priority(spec.priority, limits, "priority")
    if spec.training.epochs > limits.max_epochs:
        raise InvalidSpec(
            "training.epochs", f"{spec.training.epochs} epochs is over the limit `max_epochs` of {limits.max_epochs}"
        )
    count = parameter_count(spec.model, shape.input_shape, shape.outputs(spec))
    if count > limits.max_model_parameters:
        raise InvalidSpec(
            "model",
            f"the model has {count} parameters, over the limit `max_model_parameters` of {limits.max_model_parameters}",
            "too_large",
        )


def check_priority(priority: str, limits: Limits, field: str) -> None:
    """422 on `field` for a priority above the owner's `max_priority`."""
    if Priority(priority).rank > limits.max_priority.rank:
        raise InvalidSpec(field, f"`{priority}` is over your limit `max_priority` of `{limits.max_priority}`")


@dataclass(frozen=True)
class DataShape:
    """What the limits and the cost model need to know of a spec's data set."""

    task: Task
    input_shape: tuple[int, ...]
    n_classes: int  # 0 for regression
    rows: int

    def outputs(self, spec: JobSpec) -> int:
        """The network's outputs; `spec` has its loss resolved."""
        return output_size(self.task, spec.loss_spec, self.n_classes)


def data_shape(spec: JobSpec, uploaded: Dataset | None = None) -> DataShape:
    """The shape of the spec's data set: a built-in or synthetic one from the catalog, an uploaded one from its row."""
    source = spec.dataset
    if source.name is None:
        assert uploaded is not None, "an uploaded data set is looked up by the caller"
        input_shape = tuple(uploaded.input_shape or (len(uploaded.feature_names),))
        return DataShape(uploaded.task, input_shape, len(uploaded.class_counts or {}), uploaded.rows)
    entry = CATALOG[source.name]
    return DataShape(entry.task, entry.input_shape_for(source), entry.classes_for(source), entry.rows_for(source))
