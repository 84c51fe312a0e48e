"""HTTP routes for /v1/jobs."""

from __future__ import annotations

import json
from datetime import datetime
from importlib.resources import files
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from core.spec.labels import MAX_TAGS, PROJECT_LENGTH, SLUG
from service.deps import ArtifactsDep, QueueDep, SessionDep, SettingsDep
from service.errors import IDEMPOTENCY_CONFLICT, TOO_MANY_JOBS, TOO_MANY_STREAMS, Problem
from service.events import slots
from service.events.slots import StreamSlotsDep
from service.events.stream import JobFeedsDep, job_events
from service.idempotency.deps import IdempotentCreateDep
from service.jobs import diagnosis, service
from service.jobs.reads import JobReadsDep, MetricsQuery
from service.jobs.schemas import ArtifactList, JobCreate, JobDetail, JobList, JobLogPage, JobRead, MetricsPage
from service.jobs.service import ListQuery
from service.states import JobStatusValue
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No job with this id."}}
JobId = Annotated[str, Path(description="The job's `id`, as POST /v1/jobs returned it.")]
MAX_CONDITIONS = 16
ArtifactName = Annotated[str, Path(description="An artifact's `name`, as GET /v1/jobs/{job_id}/artifacts lists it.")]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Unchanged since the ETag in If-None-Match."}}
# The README's digits spec. This package file is its one copy (an installed package has no examples/ to
# read); examples/digits.json links to it.
EXAMPLE_SPEC = json.loads((files("service.jobs") / "digits.json").read_text())
EXAMPLE_LABELLED = {**EXAMPLE_SPEC, "project": "vision", "tags": {"team": "red", "stage": "baseline"}}


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
    body: Annotated[
        JobCreate,
        Body(
            openapi_examples={
                "digits": {"value": EXAMPLE_SPEC},
                "with a project and tags": {"value": EXAMPLE_LABELLED},
            }
        ),
    ],
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    create_once: IdempotentCreateDep,
) -> JobRead:
    """Submit a training job: a spec, with the job's `project` and `tags` beside its fields. It is queued at
    once and trained by the next free worker."""
    return await create_once.answer(
        "jobs",
        (body.model_dump(mode="json"),),
        create=lambda: service.create(session, queue, body.spec, body.labels, settings, principal),
        load=lambda job_id: service.get(session, job_id, principal),
        read=JobRead.model_validate,
    )


@router.post(
    "/{job_id}/rerun",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="rerun_job",
    responses={
        **NOT_FOUND,
        422: {
            "model": Problem,
            "description": "The changed spec is invalid or over a limit; `errors` names each field.",
        },
        429: TOO_MANY_JOBS,
    },
)
def rerun_job(
    job_id: JobId,
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
    changes: Annotated[
        dict[str, Any] | None,
        Body(
            description="A JSON merge patch (RFC 7386) of the job's spec: objects merge, a null removes a field "
            "so that it takes its default. None: the same spec.",
            openapi_examples={"more dropout": {"value": {"model": {"dropout": 0.3}, "name": "dropout 0.3"}}},
        ),
    ] = None,
) -> JobRead:
    """Submit the job's spec again as a new job (`rerun_of` names this one), changed by an optional merge patch.
    The same spec, data and seed on the same kind of CPU give the same metrics, bit for bit."""
    job = service.rerun(session, queue, job_id, changes, settings, principal)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobRead.model_validate(job)


WHERE_HELP = (
    "Only jobs whose spec has this value (repeatable; all must hold): `path operator value`, e.g. "
    "`model.dropout>=0.2`, `optimizer.name=adam`, `scheduler=null`. `path` is dotted field names (and list "
    "indices: `model.hidden_layers.0`); `operator` one of `=` `!=` `<` `<=` `>` `>=` (the last four compare "
    "numbers only; `!=` also matches jobs without the field); `value` a number, `true`, `false`, `null`, a "
    "double-quoted JSON string, or a bare word as a string. A malformed one is a 422 that names the character "
    "where it goes wrong. The grammar: docs/search.md."
)


@router.get(
    "",
    operation_id="list_jobs",
    response_model=JobList,
    responses={
        **NOT_MODIFIED,
        422: {
            "model": Problem,
            "description": "A malformed `where` (the message gives the character), `tag` or `order_by`, or a "
            "cursor of another order; `errors` names the parameter.",
        },
    },
)
async def list_jobs(
    reads: JobReadsDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    status: Annotated[JobStatusValue | None, Query(description="Only jobs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=400, description="`next_cursor` of the previous page, with the same filters.")
    ] = None,
    project: Annotated[
        str | None,
        Query(
            max_length=PROJECT_LENGTH, pattern=SLUG, description="Only the jobs of this project.", examples=["vision"]
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_TAGS,
            description="Only jobs with this tag, as `key:value` (repeatable; all must match).",
            examples=[["team:red"]],
        ),
    ] = None,
    created_after: Annotated[
        datetime | None, Query(description="Only jobs created at or after this time (ISO 8601; UTC if no zone).")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Only jobs created before this time (ISO 8601; UTC if no zone).")
    ] = None,
    where: Annotated[
        list[str] | None,
        Query(max_length=MAX_CONDITIONS, description=WHERE_HELP, examples=[["model.dropout>=0.2"]]),
    ] = None,
    order_by: Annotated[
        str,
        Query(
            max_length=64,
            description="`created_at`, or `best_metrics.<metric>` (e.g. `best_metrics.val_loss`; jobs without it "
            "come last), ascending; `-` first for descending. Default `-created_at`, newest first.",
            examples=["best_metrics.val_loss"],
        ),
    ] = "-created_at",
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
    """List your jobs (an admin: everyone's), newest first or in `order_by`, one page at a time, filtered by
    project, tags, status, creation time and spec values. Send `If-None-Match` to get a 304 when nothing on
    the page changed."""
    query = ListQuery(
        limit=min(limit, settings.max_page_size),
        cursor=cursor,
        status=status,
        project=project,
        tags=tuple(tag or ()),
        created_after=created_after,
        created_before=created_before,
        where=tuple(where or ()),
        order_by=order_by,
        sweep_id=sweep_id,
        id_prefix=id_prefix,
    )
    return await reads.page(principal, query)


@router.get("/{job_id}", operation_id="get_job", response_model=JobDetail, responses={**NOT_FOUND, **NOT_MODIFIED})
async def get_job(job_id: JobId, reads: JobReadsDep, principal: PrincipalDep) -> JobDetail | Response:
    """A job's status, progress, best epoch, stop reason and test metrics; while it is queued, its place in the
    queue and an estimate of when it starts. Supports `If-None-Match`."""
    return await reads.job(job_id, principal)


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
    reads: JobReadsDep,
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
    return await reads.metrics(job_id, principal, query)


@router.get(
    "/{job_id}/diagnosis",
    operation_id="get_job_diagnosis",
    response_model=diagnosis.DiagnosisRead,
    responses={**NOT_FOUND, 200: {"content": {"application/json": {"example": diagnosis.EXAMPLE}}}},
)
def get_job_diagnosis(job_id: JobId, session: SessionDep, principal: PrincipalDep) -> diagnosis.DiagnosisRead:
    """Is the job fitting well, overfitting, underfitting or unstable; from which epoch; the numbers that say
    so; and 1 to 3 spec changes to try. Live while the job trains (`final: false`), fixed once it has ended.
    The rules are in core/jobs/diagnosis.py."""
    return diagnosis.read(session, job_id, principal)


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
            "description": "Server-sent events: `epoch` (id = the epoch) and `status`, and with `logs_after` "
            "`log` (a worker log line, as in `/logs`, with its `seq`); ends after the final status, or at "
            "`max_stream_seconds` with `reconnect` (`retry:` and the last id: reconnect with Last-Event-ID, and "
            "`logs_after` set to the last `seq` received).",
        },
    },
)
async def stream_job_events(
    job_id: JobId,
    request: Request,
    reads: JobReadsDep,
    feeds: JobFeedsDep,
    stream_slots: StreamSlotsDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    last_event_id: Annotated[
        int | None, Header(ge=0, description="Resume after this epoch (browsers send it on reconnect).")
    ] = None,
    after_epoch: Annotated[int, Query(ge=0, description="Start after this epoch (0 = from the first).")] = 0,
    logs_after: Annotated[
        int | None,
        Query(ge=0, description="Also send the worker's log lines numbered after this one (0 = from the first)."),
    ] = None,
) -> StreamingResponse:
    """Live events of one job: each finished epoch's metrics as it ends and each status change; with
    `logs_after`, also the worker's log lines as they are written (with each epoch, and a failure's traceback
    before the final status)."""
    await reads.require(job_id, principal)
    release = stream_slots.take(slots.holder(request, principal))
    start = last_event_id if last_event_id is not None else after_epoch
    return slots.SlotStream(
        job_events(feeds, job_id, start, logs_after, settings.max_stream_seconds),
        release,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="cancel_job",
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "The job has already finished."}},
)
def cancel_job(job_id: JobId, session: SessionDep, reads: JobReadsDep, principal: PrincipalDep) -> JobRead:
    """Cancel a job. A queued job never starts; a running one stops after its current batch."""
    job = service.cancel(session, job_id, principal)
    reads.forget_on_commit(session, job_id)
    return JobRead.model_validate(job)


@router.get("/{job_id}/logs", operation_id="get_job_logs", responses=NOT_FOUND)
def get_job_logs(
    job_id: JobId,
    session: SessionDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0, description="Only lines numbered after this one (0: from the start).")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most lines to return.")] = 500,
) -> JobLogPage:
    """The job's worker-side log lines, numbered: the runner's and the engine's at INFO and above, Python and
    torch warnings, and a failure's traceback. Poll with `after` set to the last `seq` seen, until `status` is
    final and no lines come (`steadyfit logs ID --follow` does)."""
    return service.log_page(session, job_id, after, limit, principal)


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
