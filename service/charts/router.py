"""HTTP routes for charts: /v1/jobs/{job_id}/charts/{name} and /v1/sweeps/{sweep_id}/charts/{name}."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from service import caching
from service.charts import service
from service.charts.render import MEDIA_TYPES, render
from service.charts.specs import JOB_CHARTS, Chart
from service.deps import SessionDep
from service.errors import Problem
from service.jobs import service as job_service
from service.tenants.deps import PrincipalDep

router = APIRouter(tags=["charts"])
MAX_CHART_JOBS = 50

Format = Annotated[
    Literal["json", "svg", "png"],
    Query(
        description="`json` (the default): the Vega-Lite spec with its data inline, as "
        "`application/vnd.vegalite+json`; `svg` or `png`: the same chart drawn on the server."
    ),
]
EXAMPLE_CHART = {
    "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
    "title": "digits-mlp · learning curves",
    "data": {"values": [{"epoch": 1, "split": "train", "loss": 0.93}, {"epoch": 1, "split": "val", "loss": 0.71}]},
    "mark": "line",
    "encoding": {"x": {"field": "epoch", "type": "quantitative"}, "y": {"field": "loss", "type": "quantitative"}},
}
CHART_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The chart: a Vega-Lite spec, or the image drawn from it.",
        "content": {
            MEDIA_TYPES["json"]: {"schema": {"type": "object"}, "example": EXAMPLE_CHART},
            MEDIA_TYPES["svg"]: {"schema": {"type": "string"}},
            MEDIA_TYPES["png"]: {"schema": {"type": "string", "format": "binary"}},
        },
    },
}


def _not_found(resource: str) -> dict[str, Any]:
    """The 404 response of a chart of this resource."""
    return {
        "model": Problem,
        "description": f"No {resource} with this id, or no chart by this name (`detail` lists them).",
    }


@router.get(
    "/v1/jobs/{job_id}/charts/{name}",
    operation_id="get_job_chart",
    response_class=Response,
    responses={
        **CHART_CONTENT,
        304: {"description": "Unchanged since the ETag in If-None-Match."},
        404: _not_found("job"),
    },
)
def get_job_chart(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    job_id: Annotated[str, Path(description="The job's `id`.")],
    name: Annotated[str, Path(description=f"The chart: {', '.join(f'`{name}`' for name in JOB_CHARTS)}.")],
    format: Format = "json",
) -> Response:
    """A chart of the job, drawn from its epochs so far: `learning_curves` (training and validation loss, the best
    and the stop epochs marked) or `regularization` (the weights' L1 and L2 norms, their sparsity and the penalty,
    per epoch). Paste the JSON into any Vega-Lite renderer (Jupyter, Observable, VS Code, Grafana's Vega panel),
    or ask for `svg` or `png`. Supports `If-None-Match`."""
    version = job_service.version(session, job_id, principal)
    analysis, settled = service.analysis_version(session, job_id, name)  # a landscape may end after its job
    etag = f'{version.etag[:-1]}-{name}{analysis}-{format}"'
    cache_control = caching.FINAL if version.terminal and settled else caching.NO_CACHE
    if caching.matches(request, etag):
        return caching.not_modified(etag, cache_control)
    response = _drawn(service.job_chart(session, job_id, name, principal), format)
    caching.tag(response, etag, cache_control)
    return response


@router.get(
    "/v1/sweeps/{sweep_id}/charts/{name}",
    operation_id="get_sweep_chart",
    response_class=Response,
    responses={**CHART_CONTENT, 404: _not_found("sweep")},
)
def get_sweep_chart(
    session: SessionDep,
    principal: PrincipalDep,
    sweep_id: Annotated[str, Path(description="The sweep's `id`.")],
    name: Annotated[str, Path(description="The chart: `parallel_coordinates`.")],
    format: Format = "json",
) -> Response:
    """A chart of the sweep's trials so far: `parallel_coordinates`, one line per trial across an axis per searched
    parameter and one for the objective, coloured by the objective."""
    return _uncached(service.sweep_chart(session, sweep_id, name, principal), format)


@router.get(
    "/v1/charts/parallel_coordinates",
    operation_id="get_jobs_parallel_coordinates",
    response_class=Response,
    responses={**CHART_CONTENT, 404: {"model": Problem, "description": "One of the jobs does not exist."}},
)
def get_jobs_parallel_coordinates(
    session: SessionDep,
    principal: PrincipalDep,
    job_ids: Annotated[
        list[str],
        Query(min_length=2, max_length=MAX_CHART_JOBS, description="The jobs to draw (repeat it: 2 to 50 of them)."),
    ],
    metric: Annotated[str, Query(max_length=100, description="The best-epoch metric of the last axis.")] = "val_loss",
    format: Format = "json",
) -> Response:
    """Parallel coordinates of chosen jobs, e.g. a search's results: an axis per spec field in which they differ
    (log where a field spans decades, choices spaced evenly) and one for each job's best `metric`, a line per job
    coloured by it. The dashboard's Compare view draws it for the jobs it compares."""
    return _uncached(service.jobs_chart(session, job_ids, metric, principal), format)


@router.get(
    "/v1/paths/{path_id}/charts/{name}",
    operation_id="get_path_chart",
    response_class=Response,
    responses={**CHART_CONTENT, 404: _not_found("path")},
)
def get_path_chart(
    session: SessionDep,
    principal: PrincipalDep,
    path_id: Annotated[str, Path(description="The path's `id`.")],
    name: Annotated[str, Path(description="The chart: `path`.")],
    format: Format = "json",
) -> Response:
    """The path's chart: validation loss (± its standard error) and sparsity against the strength, on a log axis,
    with the best and the 1-SE strengths marked."""
    return _uncached(service.path_chart(session, path_id, name, principal), format)


def _drawn(chart: Chart, format: Literal["json", "svg", "png"]) -> Response:
    body = json.dumps(chart).encode() if format == "json" else render(chart, format)
    return Response(body, media_type=MEDIA_TYPES[format])


def _uncached(chart: Chart, format: Literal["json", "svg", "png"]) -> Response:
    """The chart drawn, marked never to be cached."""
    response = _drawn(chart, format)
    response.headers["Cache-Control"] = caching.NO_CACHE
    return response
