"""The one place that turns a spec into a job its owner may run: authorized, within limits, costed.

Every path that creates a job comes through here with the principal it acts for: a direct submission
(`POST /v1/jobs`) with its caller, a sweep's trials with their sweep's owner, and so must anything that
makes jobs from other jobs (a sweep's path points, a rerun, a suggestion). `admit` checks a spec, in order:

1. Its data set: a built-in or synthetic one, or an uploaded one of the job's owner (another owner's is a
   422 on `dataset.id`, as if it did not exist; an admin's job is no exception, since the job is the
   admin's). Its task is the data set's; `task`, when given, must be it (a sweep's trials keep its task).
   A `cnn` and the image augmentations need images: an uploaded set with an `input_shape`.
2. The spec fits that task (loss, monitored metrics), and the task's default loss is filled in.
3. `init_from`: a succeeded job, or a model, of the same owner (another owner's is a 422 on
   `init_from.job_id` or `init_from.model_id`).
4. The owner's limits: priority, epochs and parameters (quotas.py).
5. The server's cost bounds: data bytes, activation bytes, wall time (cost.py).

The `Admission` it returns is what `submit` stores: nothing is checked twice. Quotas on how
many jobs an owner has are not a property of one spec; `hold` takes the owner's lock for them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.datasets import repository as datasets_repository
from core.db.engine import after_commit
from core.db.models import Job
from core.errors import InvalidSpec
from core.jobs import cost, quotas, repository
from core.models import repository as models_repository
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.job import InitFromSpec, JobSpec, SpecTaskError, Task
from core.spec.labels import Labels
from core.states import JobStatus, Priority
from core.tenants import limits as owner_limits
from core.tenants.limits import Limits


@dataclass(frozen=True)
class Admission:
    """A spec admitted for an owner: as the job stores it (default loss filled in), with its task."""

    spec: JobSpec
    task: Task
    owner: str


def hold_for_one(session: Session, settings: Settings, owner: str) -> Limits:
    """The owner's limits under the owner's lock (tenants.limits.hold), for a submission: a 429 naming the
    limit when the owner's job quota has no room."""
    limits = owner_limits.hold(session, settings, owner)
    quotas.check_job_quota(session, owner, limits, settings.retry_after_seconds)
    return limits


def admit(
    session: Session,
    settings: Settings,
    spec: JobSpec,
    owner: str,
    limits: Limits,
    task: Task | None = None,
) -> Admission:
    """Steps 1-5 of the module's rule for a job of `owner`; a 422 naming the field at the first that fails."""
    uploaded = None
    if spec.dataset.id is not None:
        uploaded = datasets_repository.get(session, spec.dataset.id)
        if uploaded is None or uploaded.owner != owner:
            raise InvalidSpec("dataset.id", f"no uploaded data set `{spec.dataset.id}`", "not_found")
    shape = quotas.data_shape(spec, uploaded)
    if uploaded is not None and uploaded.input_shape is None:
        _check_not_images(spec)
    if task is not None and shape.task != task:
        raise InvalidSpec("dataset", f"a {shape.task} data set, where this needs a {task} one")
    try:
        spec = spec.with_task(shape.task)
    except SpecTaskError as exc:
        raise InvalidSpec(exc.field, str(exc)) from exc
    if spec.init_from is not None:
        _check_init_from(session, spec.init_from, owner)
    quotas.check_spec_limits(spec, shape, limits)
    cost.check(spec, shape.rows, shape.input_shape, shape.outputs(spec), cost.cost_bounds(settings))
    return Admission(spec, shape.task, owner)


def _check_not_images(spec: JobSpec) -> None:
    """An uploaded table is no image set: no `cnn`, no crops, flips or cutout."""
    if spec.model.type == "cnn":
        raise InvalidSpec("model.type", "`cnn` needs images: upload an npz of image arrays or a zip of images")
    if spec.augmentation is not None and spec.augmentation.on_images:
        raise InvalidSpec("augmentation", "crops, flips and cutout need images; this data set is a table")


def _check_init_from(session: Session, init_from: InitFromSpec, owner: str) -> None:
    if init_from.model_id is not None:
        model = models_repository.get(session, init_from.model_id)
        if model is None or model.owner != owner:
            raise InvalidSpec("init_from.model_id", f"no model `{init_from.model_id}`", "not_found")
        return
    job_id = init_from.job_id
    source = repository.get(session, job_id) if job_id is not None else None
    if source is None or source.owner != owner:
        raise InvalidSpec("init_from.job_id", f"no job `{job_id}`", "not_found")
    if source.status != JobStatus.SUCCEEDED:
        raise InvalidSpec("init_from.job_id", f"job `{job_id}` is {source.status}, not succeeded")


def submit(session: Session, queue: TaskQueue, admitted: Admission, labels: Labels) -> Job:
    """Store the admitted job as queued, with its project and tags, and queue it once the row is committed."""
    job = repository.add(
        session,
        Job(
            id=str(uuid.uuid4()),
            owner=admitted.owner,
            name=admitted.spec.name,
            status=JobStatus.QUEUED,
            priority=Priority(admitted.spec.priority),
            task=admitted.task,
            spec=admitted.spec.model_dump(mode="json"),
            project=labels.project,
            tags=labels.tags,
        ),
    )
    after_commit(session, lambda: queue.send_train(job.id))
    return job
