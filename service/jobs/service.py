"""What the jobs API does, between the router (HTTP) and the repository (SQL). Services only flush."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.artifacts import ArtifactStore, OpenedArtifact, job_prefix
from core.db.models import Job
from core.errors import Conflict, InvalidSpec, NotFound, invalid_cursor_is_422, invalid_fields
from core.jobs import admission, logs, repository, scheduler, where
from core.jobs.search import JobSearch, parse_order, parse_tag
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.job import JobSpec, metrics_for
from core.spec.labels import Labels
from core.states import TERMINAL, JobStatus
from core.tenants.limits import limits_for
from core.tenants.principal import Principal
from service.caching import BodyCache
from service.jobs import metrics_json
from service.jobs.downsample import downsample
from service.jobs.schemas import (
    ArtifactList,
    ArtifactRead,
    JobDetail,
    JobLogLine,
    JobLogPage,
    JobRead,
    MetricsPage,
)
from service.jobs.versions import Version, VersionTable, job_etag

SAFETENSORS = "application/octet-stream"


def log_page(session: Session, job_id: str, after: int, limit: int, principal: Principal) -> JobLogPage:
    job = get(session, job_id, principal)
    lines = logs.after(session, job_id, after, limit)
    return JobLogPage(job_id=job_id, status=job.status, items=[JobLogLine.model_validate(line) for line in lines])


def rerun(
    session: Session,
    queue: TaskQueue,
    job_id: str,
    patch: dict[str, Any] | None,
    settings: Settings,
    principal: Principal,
) -> Job:
    """The job's stored spec again, as a new job of the caller's in the same project with the same tags,
    changed by `patch` (a JSON merge patch, RFC 7386: objects merge, a null removes a field so that it takes
    its default)."""
    source = get(session, job_id, principal)
    merged = merge_patch(source.spec, patch or {})
    try:
        spec = JobSpec.model_validate(merged)
    except ValidationError as exc:
        raise invalid_fields(exc) from None
    job = create(session, queue, spec, Labels(project=source.project, tags=source.tags), settings, principal)
    job.rerun_of = job_id
    return job


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: `patch` applied to `target`."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def create(
    session: Session, queue: TaskQueue, spec: JobSpec, labels: Labels, settings: Settings, principal: Principal
) -> Job:
    """A job submitted through the API: admitted, then within its owner's job quotas, then submitted. The
    owner's lock (admission.hold_for_one) is held from the count of its jobs until this one is committed,
    and taken after admission, which only reads, so that submissions wait on each other no longer than that."""
    admitted = admission.admit(session, settings, spec, principal.owner, limits_for(session, settings, principal.owner))
    admission.hold_for_one(session, settings, principal.owner)
    return admission.submit(session, queue, admitted, labels)


def get(session: Session, job_id: str, principal: Principal) -> Job:
    """The job, if this caller may see it; another owner's job is a 404, as if it did not exist."""
    job = repository.get(session, job_id)
    if job is None or not principal.sees(job.owner):
        raise NotFound(f"no job `{job_id}`")
    return job


@dataclass(frozen=True)
class ListQuery:
    """GET /v1/jobs's query, as sent: `search` reads it."""

    limit: int
    cursor: str | None = None
    status: str | None = None
    project: str | None = None
    tags: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    where: tuple[str, ...] = ()
    order_by: str = "-created_at"
    sweep_id: str | None = None
    id_prefix: str | None = None


def search(principal: Principal, query: ListQuery) -> JobSearch:
    """The jobs the query asks for among those the caller sees; a 422 naming `tag`, `where` or `order_by` when
    one is malformed (a `where` error tells the character where it goes wrong)."""
    conditions = []
    for expression in query.where:
        try:
            conditions.append(where.parse(expression))
        except where.WhereError as exc:
            raise InvalidSpec("where", str(exc), "invalid_where") from exc
    return JobSearch(
        scope=principal.scope,
        project=query.project,
        tags=dict(parse_tag(tag) for tag in query.tags),
        status=query.status,
        created_after=_utc(query.created_after),
        created_before=_utc(query.created_before),
        where=tuple(conditions),
        sweep_id=query.sweep_id,
        id_prefix=query.id_prefix,
        order=parse_order(query.order_by),
    )


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without a zone is UTC, as every time the API returns."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@dataclass(frozen=True)
class JobPage:
    """A page of the job list as its query found it: each job's id and ETag, newest first, and the cursor of
    the next page. That is all the page's JSON is made of, so its ETag is made of that."""

    etags: dict[str, str]  # job id → the job's ETag
    next_cursor: str | None
    moves_with_changes: bool  # a change of any job can move it onto the page (JobSearch.moves_with_changes)

    @property
    def etag(self) -> str:
        digest = hashlib.blake2b(repr((self.etags, self.next_cursor)).encode(), digest_size=16)
        return f'"{digest.hexdigest()}"'


def list_page(session: Session, principal: Principal, query: ListQuery) -> JobPage:
    """Which jobs are on a page: one query, which reads only what their ETags are made of."""
    found = search(principal, query)
    with invalid_cursor_is_422():
        rows, next_cursor = repository.list_page(session, found, limit=query.limit, cursor=query.cursor)
    etags = {row.id: job_etag(row.updated_at, row.epochs_completed) for row in rows}
    return JobPage(etags, next_cursor, found.moves_with_changes)


def list_body(session: Session, bodies: BodyCache, page: JobPage) -> bytes:
    """The page as `JobList` JSON. Each job's JSON is built once per version: only the jobs whose JSON is
    not in `bodies` are loaded."""
    found = {job_id: bodies.get(job_body_key(job_id), etag) for job_id, etag in page.etags.items()}
    for job in repository.get_many(session, [job_id for job_id, body in found.items() if body is None]):
        found[job.id] = job_body(bodies, job)
    items = b",".join(body for body in found.values() if body is not None)
    return b'{"items":[%s],"next_cursor":%s}' % (items, json.dumps(page.next_cursor).encode())


def job_body_key(job_id: str) -> tuple[str, str]:
    return ("job", job_id)


def job_body(bodies: BodyCache, job: Job) -> bytes:
    """The job as `JobRead` JSON, kept in `bodies` under its ETag (the job list and `GET` share it)."""
    body = JobRead.model_validate(job).model_dump_json().encode()
    bodies.put(job_body_key(job.id), job_etag(job.updated_at, job.epochs_completed), body)
    return body


def job_detail_key(job_id: str) -> tuple[str, str]:
    return ("job-detail", job_id)


def job_detail(session: Session, bodies: BodyCache, job: Job, etag: str) -> bytes:
    """The job as `JobDetail` JSON. A queued job's place in the queue moves as other jobs start, end and
    arrive, its own row unchanged, so its JSON is made at each read, never kept; any other job's is kept in
    `bodies` under its ETag, `etag`. The ETag stays the row's (the one its metrics share): a conditional GET
    of a queued job is a 304 while its row is unchanged, whatever its place."""
    if job.status == JobStatus.QUEUED:
        position = scheduler.queue_position(session, job.id)
        start = None if position is None else scheduler.estimated_start(session, position)
        queued = {"queue_position": position, "estimated_start": start}
        return JobDetail.model_validate(job).model_copy(update=queued).model_dump_json().encode()
    body = bodies.get(job_detail_key(job.id), etag)
    if body is None:
        body = JobDetail.model_validate(job).model_dump_json().encode()
        bodies.put(job_detail_key(job.id), etag, body)
    return body


def metrics(
    session: Session, job_id: str, version: Version, after_epoch: int, limit: int | None, max_points: int | None
) -> MetricsPage:
    """A page of the job's epochs as of `version` (see `_page_rows`)."""
    rows = _page_rows(session, job_id, version, after_epoch=after_epoch, limit=limit, max_points=max_points)
    return MetricsPage(job_id=job_id, status=version.status, items=repository.decoded(rows))


def metrics_body(
    session: Session, job_id: str, version: Version, after_epoch: int, limit: int | None, max_points: int | None
) -> bytes:
    """`metrics` as JSON, joined from the stored rows (service/jobs/metrics_json.py)."""
    rows = _page_rows(session, job_id, version, after_epoch=after_epoch, limit=limit, max_points=max_points)
    return metrics_json.metrics_page(job_id, version.status, rows)


def _page_rows(
    session: Session, job_id: str, version: Version, *, after_epoch: int, limit: int | None, max_points: int | None
) -> list[tuple[int, str]]:
    """The rows of a page of the job's epochs as of `version` (just read or known, the caller allowed to see
    it): epochs written since are left for the next poll, so the page is exactly what its ETag stands for."""
    rows = repository.epoch_texts(session, job_id, after_epoch, limit, up_to=version.epochs)
    if max_points is None or len(rows) <= max_points:
        return rows
    kept = {item["epoch"] for item in downsample(repository.decoded(rows), max_points, version.best_epoch)}
    return [row for row in rows if row[0] in kept]


def metrics_csv(page: MetricsPage, task: str) -> str:
    """One row per epoch, one column per metric, in the order the docs list them."""
    order = {key: i for i, key in enumerate(metrics_for(task))}  # type: ignore[arg-type]
    keys = sorted({key for item in page.items for key in item} - {"epoch"}, key=lambda k: (order.get(k, 99), k))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for item in page.items:
        writer.writerow([item["epoch"], *("" if item.get(k) is None else item[k] for k in keys)])
    return out.getvalue()


def version(session: Session, job_id: str, principal: Principal, versions: VersionTable | None = None) -> Version:
    """The job's ETag, from a single small read; a 304 needs nothing more. Kept in `versions` when given."""
    mark = versions.mark() if versions is not None else 0
    found = repository.version(session, job_id)
    if found is None or not principal.sees(found[3]):
        raise NotFound(f"no job `{job_id}`")
    return _kept(versions, job_id, _version_of(*found), mark)


def get_with_version(
    session: Session, job_id: str, principal: Principal, versions: VersionTable
) -> tuple[Job, Version]:
    """The job and its ETag from one read of its row (kept in `versions`)."""
    mark = versions.mark()
    job = get(session, job_id, principal)
    found = _version_of(job.status, job.updated_at, job.epochs_completed, job.owner, job.best_epoch)
    return job, _kept(versions, job_id, found, mark)


def _version_of(status: str, updated_at: datetime, epochs: int, owner: str, best_epoch: int | None) -> Version:
    return Version(job_etag(updated_at, epochs), status in TERMINAL, owner, status, best_epoch, epochs)


def _kept(versions: VersionTable | None, job_id: str, version: Version, mark: int) -> Version:
    if versions is not None:
        versions.put(job_id, version, mark)
    return version


def cancel(session: Session, job_id: str, principal: Principal) -> Job:
    """Queued: cancelled at once. Running: its worker stops at the end of the current batch."""
    job = get(session, job_id, principal)
    if not (repository.cancel_queued(session, job_id) or repository.request_cancel(session, job_id)):
        raise Conflict(f"job `{job_id}` is already {job.status}")
    session.refresh(job)
    return job


def artifacts(session: Session, store: ArtifactStore, job_id: str, principal: Principal) -> ArtifactList:
    get(session, job_id, principal)
    prefix = job_prefix(job_id)
    items = [
        ArtifactRead(name=key.removeprefix(prefix), size_bytes=size, media_type=SAFETENSORS)
        for key, size in store.list(prefix)
    ]
    return ArtifactList(job_id=job_id, items=items)


def artifact(session: Session, store: ArtifactStore, job_id: str, name: str, principal: Principal) -> OpenedArtifact:
    """One artifact, opened to be sent in chunks; `name` must be one the listing returned, so no user path
    reaches the disk."""
    listed = {item.name for item in artifacts(session, store, job_id, principal).items}
    opened = store.open(job_prefix(job_id) + name) if name in listed else None
    if opened is None:
        raise NotFound(f"job `{job_id}` has no artifact `{name}`")
    return opened
