"""HTTP routes for /v1/jobs."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from importlib.resources import files
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from core.db.engine import Database, after_commit
from core.spec.job import JobSpec
from core.tenants.principal import Principal
from service import caching
from service.caching import BodyCache, ReadsInFlight
from service.deps import ArtifactsDep, IdempotencyKeyDep, QueueDep, SessionDep, SettingsDep
from service.errors import IDEMPOTENCY_CONFLICT, TOO_MANY_JOBS, TOO_MANY_STREAMS, Problem
from service.events import slots
from service.events.stream import job_events
from service.idempotency import service as idempotency
from service.jobs import service
from service.jobs.schemas import ArtifactList, JobList, JobRead, MetricsPage
from service.jobs.versions import Version, VersionTable
from service.states import JobStatusValue
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No job with this id."}}
JobId = Annotated[str, Path(description="The job's `id`, as POST /v1/jobs returned it.")]
ArtifactName = Annotated[str, Path(description="An artifact's `name`, as GET /v1/jobs/{job_id}/artifacts lists it.")]
SSE_EXAMPLE = 'id: 1\nevent: epoch\ndata: {"epoch": 1, "val_loss": 0.7}\n\n'
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Unchanged since the ETag in If-None-Match."}}
# The README's digits spec; examples/digits.json links to this file.
EXAMPLE_SPEC = json.loads((files("service.jobs") / "digits.json").read_text())


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="create_job",
    responses={
        409: IDEMPOTENCY_CONFLICT,
        422: {
            "model": Problem,
            "description": "The spec is invalid, names a data set or job that is not the caller's, or is over a "
            "limit or cost bound (`training.epochs`, `model`, `dataset`, `training.max_wall_seconds`); `errors` "
            "names each field.",
        },
        429: TOO_MANY_JOBS,
    },
)
async def create_job(
    spec: Annotated[JobSpec, Body(openapi_examples={"digits": {"value": EXAMPLE_SPEC}})],
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep = None,
) -> JobRead:
    """Submit a training job. It is queued at once and trained by the next free worker."""

    def create() -> JobRead:
        job, replayed = idempotency.create_once(
            session,
            settings,
            owner=principal.owner,
            key=idempotency_key,
            route="jobs",
            body_hash=idempotency.request_hash(spec.model_dump(mode="json")),
            create=lambda: service.create(session, queue, spec, settings, principal),
            resource_id=lambda job: job.id,
            load=lambda job_id: service.get(session, job_id, principal),
        )
        idempotency.mark_created(response, f"/v1/jobs/{job.id}", replayed)
        return JobRead.model_validate(job)

    # Async, with the work in the thread pool: the commit that releases the owner's lock (tenants.limits.hold)
    # comes after the answer is serialized, which for a sync route needs a pool thread, while submissions
    # waiting on that lock hold the pool's threads.
    return await run_in_threadpool(create)


@router.get("", operation_id="list_jobs", response_model=JobList, responses=NOT_MODIFIED)
async def list_jobs(
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    status: Annotated[JobStatusValue | None, Query(description="Only jobs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
    sweep_id: Annotated[str | None, Query(max_length=64, description="Only the trials of this sweep.")] = None,
    id_prefix: Annotated[
        str | None,
        Query(
            max_length=36,
            pattern="^[0-9a-f-]+$",
            description="Only the jobs whose id starts with this (lower-case hex digits and `-`), as"
            " `steadyfit show` looks up a short id.",
        ),
    ] = None,
) -> JobList | Response:
    """List your jobs (an admin: everyone's), newest first, one page at a time. Send `If-None-Match` to get
    a 304 when nothing on the page changed."""
    page_size = min(limit, settings.max_page_size)
    return await run_in_threadpool(_read_list, request, principal, status, page_size, cursor, sweep_id, id_prefix)


def _read_list(
    request: Request,
    principal: Principal,
    status: str | None,
    limit: int,
    cursor: str | None,
    sweep_id: str | None,
    id_prefix: str | None,
) -> Response:
    with request.app.state.database.autocommit_session() as session:
        page = service.list_page(
            session, principal, status=status, limit=limit, cursor=cursor, sweep_id=sweep_id, id_prefix=id_prefix
        )
        if caching.matches(request, page.etag):
            return caching.not_modified(page.etag, caching.NO_CACHE)
        body = service.list_body(session, _bodies(request), page)
    return caching.tagged_body(body, page.etag, caching.NO_CACHE)


@router.get("/{job_id}", operation_id="get_job", response_model=JobRead, responses={**NOT_FOUND, **NOT_MODIFIED})
async def get_job(job_id: JobId, request: Request, principal: PrincipalDep) -> JobRead | Response:
    """A job's status, progress, best epoch, stop reason and test metrics. Supports `If-None-Match`."""
    read = partial(_read_job, request, job_id, principal)
    return await _answer(request, job_id, principal, service.job_body_key(job_id), read)


async def _answer(
    request: Request, job_id: str, principal: Principal, key: Hashable, read: Callable[[], Response]
) -> Response:
    """From memory if this process can (a 304, or the body kept under `key`), else from the database by
    `read`, in the thread pool. While another request's read of `key` is under way, it waits for that read
    and looks in memory again (with PostgreSQL: memory is used only while the database notifies changes)."""
    answered = _from_memory(request, job_id, principal, key)
    flights: ReadsInFlight = request.app.state.reads_in_flight
    if answered is None and _versions(request).live and await flights.wait(key):
        answered = _from_memory(request, job_id, principal, key)
    if answered is not None:
        return answered
    with flights.reading(key):
        return await run_in_threadpool(read)


def _known_version(request: Request, job_id: str, principal: Principal) -> Version | None:
    """The job's version as this process knows it without a query; None when the database must say
    (not known here, or another owner's job, whose 404 comes from the database read)."""
    version = _versions(request).get(job_id)
    return version if version is not None and principal.sees(version.owner) else None


def _from_memory(request: Request, job_id: str, principal: Principal, key: Hashable) -> Response | None:
    """The answer with no query and no thread, when this process knows the job's current ETag: a 304 for an
    `If-None-Match` that names it, or the body kept under `key` for it."""
    version = _known_version(request, job_id, principal)
    if version is None:
        return None
    if caching.matches(request, version.etag):
        return caching.not_modified(version.etag, _cache_control(version))
    body = _bodies(request).get(key, version.etag)
    return None if body is None else caching.tagged_body(body, version.etag, _cache_control(version))


def _versions(request: Request) -> VersionTable:
    versions: VersionTable = request.app.state.versions
    return versions


def _bodies(request: Request) -> BodyCache:
    bodies: BodyCache = request.app.state.bodies
    return bodies


def _cache_control(version: Version) -> str:
    return caching.FINAL if version.terminal else caching.NO_CACHE


def _read_job(request: Request, job_id: str, principal: Principal) -> Response:
    with request.app.state.database.autocommit_session() as session:
        job, version = service.get_with_version(session, job_id, principal, _versions(request))
        if caching.matches(request, version.etag):
            return caching.not_modified(version.etag, _cache_control(version))
        body = service.job_body(_bodies(request), job)
    return caching.tagged_body(body, version.etag, _cache_control(version))


@router.get(
    "/{job_id}/metrics",
    operation_id="get_job_metrics",
    response_model=MetricsPage,
    responses={
        **NOT_FOUND,
        **NOT_MODIFIED,
        200: {"content": {"text/csv": {"example": "epoch,train_loss,val_loss\n1,0.93,0.71\n"}}},
    },
)
async def get_job_metrics(
    job_id: JobId,
    request: Request,
    principal: PrincipalDep,
    after_epoch: Annotated[int, Query(ge=0, description="Only epochs after this one (0 = all).")] = 0,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="At most this many epochs.")] = None,
    max_points: Annotated[
        int | None,
        Query(
            ge=3,
            le=100_000,
            description="Downsample to at most this many epochs, keeping the first, the last, the best "
            "and each stretch's highest and lowest validation loss.",
        ),
    ] = None,
    format: Annotated[Literal["json", "csv"], Query(description="`csv` for spreadsheets.")] = "json",
) -> MetricsPage | Response:
    """Per-epoch metrics, oldest first. Poll with `after_epoch` set to the last epoch you have, and
    `If-None-Match` set to the last ETag: a 304 usually costs no query at all."""
    query = MetricsQuery(after_epoch=after_epoch, limit=limit, max_points=max_points, format=format)
    read = partial(_read_metrics, request, job_id, principal, query)
    return await _answer(request, job_id, principal, _page_key(job_id, query), read)


@dataclass(frozen=True)
class MetricsQuery:
    after_epoch: int
    limit: int | None
    max_points: int | None
    format: Literal["json", "csv"]


def _page_key(job_id: str, query: MetricsQuery) -> Hashable:
    return ("metrics", job_id, query)


def _read_metrics(request: Request, job_id: str, principal: Principal, query: MetricsQuery) -> Response:
    """The page; with the job's version known (kept current by notifications), the epochs query alone. A
    JSON page is kept under its ETag for the next identical poll (a page shows its version's epochs only)."""
    with request.app.state.database.autocommit_session() as session:
        version = _known_version(request, job_id, principal) or service.version(
            session, job_id, principal, _versions(request)
        )
        cache_control = _cache_control(version)
        if caching.matches(request, version.etag):
            return caching.not_modified(version.etag, cache_control)
        page = service.metrics(
            session, job_id, version, after_epoch=query.after_epoch, limit=query.limit, max_points=query.max_points
        )
        if query.format == "csv":
            job = service.get(session, job_id, principal)
            csv_response = Response(service.metrics_csv(page, job.task), media_type="text/csv")
            caching.tag(csv_response, version.etag, cache_control)
            return csv_response
    body = page.model_dump_json().encode()
    _bodies(request).put(_page_key(job_id, query), version.etag, body)
    return caching.tagged_body(body, version.etag, cache_control)


@router.get(
    "/{job_id}/events",
    operation_id="stream_job_events",
    response_class=StreamingResponse,
    responses={
        **NOT_FOUND,
        429: TOO_MANY_STREAMS,
        200: {
            "content": {
                "text/event-stream": {"example": 'id: 1\nevent: epoch\ndata: {"epoch": 1, "val_loss": 0.7}\n\n'}
            },
            "description": "Server-sent events: `epoch` (id = the epoch) and `status`; ends after the final status, "
            "or at `max_stream_seconds` with `reconnect` (`retry:` and the last id: reconnect with Last-Event-ID).",
        },
    },
)
async def stream_job_events(
    job_id: JobId,
    request: Request,
    settings: SettingsDep,
    principal: PrincipalDep,
    last_event_id: Annotated[
        int | None, Header(ge=0, description="Resume after this epoch (browsers send it on reconnect).")
    ] = None,
    after_epoch: Annotated[int, Query(ge=0, description="Start after this epoch (0 = from the first).")] = 0,
) -> StreamingResponse:
    """Live events of one job: each finished epoch's metrics as it ends, and each status change."""
    database = request.app.state.database
    await run_in_threadpool(_require, database, job_id, principal)
    release = request.app.state.stream_slots.take(slots.holder(request, principal))
    start = last_event_id if last_event_id is not None else after_epoch
    return slots.SlotStream(
        job_events(request.app.state.feeds, job_id, start, settings.max_stream_seconds),
        release,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _require(database: Database, job_id: str, principal: Principal) -> None:
    """404 before the stream starts, rather than an empty stream."""
    with database.session() as session:
        service.version(session, job_id, principal)


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="cancel_job",
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "The job has already finished."}},
)
def cancel_job(job_id: JobId, request: Request, session: SessionDep, principal: PrincipalDep) -> JobRead:
    """Cancel a job. A queued job never starts; a running one stops after its current batch."""
    job = service.cancel(session, job_id, principal)
    # This process forgets the old ETag before answering; the others when PostgreSQL notifies them.
    after_commit(session, lambda: _versions(request).changed(job_id))
    return JobRead.model_validate(job)


@router.get("/{job_id}/artifacts", operation_id="list_job_artifacts", responses=NOT_FOUND)
def list_job_artifacts(
    job_id: JobId, session: SessionDep, store: ArtifactsDep, principal: PrincipalDep
) -> ArtifactList:
    """The files a job produced: `weights.safetensors` (the kept weights, with the spec and the
    preprocessing statistics in its metadata) once it has finished."""
    return service.artifacts(session, store, job_id, principal)


@router.get(
    "/{job_id}/artifacts/{name}",
    operation_id="download_job_artifact",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"content": {"application/octet-stream": {}}, "description": "The file."}},
)
def download_job_artifact(
    job_id: JobId, name: ArtifactName, session: SessionDep, store: ArtifactsDep, principal: PrincipalDep
) -> Response:
    """Download one artifact. Weights are safetensors: loading them can never run code."""
    opened = service.artifact(session, store, job_id, name, principal)
    return StreamingResponse(
        opened.chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(opened.size),
            "Content-Disposition": f'attachment; filename="{job_id}-{name}"',
        },
    )
