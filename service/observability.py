"""Prometheus metrics of the service itself at GET /metrics (a job's own metrics are under /v1/jobs).

Gauges that describe the fleet (jobs by status, queue depth, epochs trained, worker heartbeats) are read
from the database and the broker, so every API process reports the same truth; a reading serves every scrape
for METRICS_REFRESH_SECONDS (see FleetCollector). Request latency is measured in each process;
`steadyfit api --workers N` shares it through prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR,
set by the command). With keys on, only an admin's key or METRICS_TOKEN may read them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.db.engine import Database
from core.db.models import Job
from core.queue import TaskQueue
from core.settings import Settings
from core.states import JobStatus
from service.errors import AUTH_ERRORS
from service.tenants.deps import require_metrics_reader

log = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "steadyfit_api_request_duration_seconds",
    "Time to answer an API request, by route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


class FleetCollector(Collector):
    """What the database and the broker say about all jobs and workers, read at most once per `refresh` seconds.

    Why a reading kept for a while rather than counters: jobs change state in workers and in every API process,
    so counters kept by one API process would count only its own share of the changes; the database is the one
    place where they all meet. Reading it at most once per METRICS_REFRESH_SECONDS (10 s, under Prometheus's
    usual scrape interval of 15 s) bounds what scrapes cost the database whatever their number (several
    Prometheus servers, several API processes, someone reloading the page), at the price of figures that
    old. Scrapes that arrive together wait for one reading.
    """

    def __init__(self, database: Database, queue: TaskQueue, settings: Settings) -> None:
        self.database, self.queue, self.lease = database, queue, timedelta(seconds=settings.lease_seconds)
        self.refresh = settings.metrics_refresh_seconds
        self._lock = threading.Lock()  # scrapes run in the thread pool
        self._reading: list[Metric] = []
        self._read_at = -math.inf

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh:
                self._reading = list(self._read())
                self._read_at = time.monotonic()
            reading = self._reading
        yield from reading

    def _read(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("steadyfit_jobs", "Jobs by status.", labels=["status"])
        epochs = CounterMetricFamily("steadyfit_epochs_trained", "Epochs trained, over all jobs.")
        heartbeats = GaugeMetricFamily(
            "steadyfit_worker_heartbeat_timestamp_seconds",
            "When each worker busy with a job last renewed its lease (Unix time).",
            labels=["worker"],
        )
        with self.database.session() as session:
            counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            epochs.add_metric([], float(session.scalar(select(func.sum(Job.epochs_completed))) or 0))
            leases = session.execute(
                select(Job.worker_id, func.max(Job.lease_expires_at))
                .where(Job.status == JobStatus.RUNNING, Job.worker_id.is_not(None))
                .group_by(Job.worker_id)
            ).all()
        for status in JobStatus:
            jobs.add_metric([status], float(counts.get(status, 0)))
        for worker_id, expires in leases:
            if worker_id is not None and expires is not None:
                heartbeats.add_metric([worker_id], (expires - self.lease).timestamp())
        yield jobs
        yield epochs
        yield heartbeats
        try:
            depth = float(self.queue.depth())
        except Exception as exc:  # the broker is down: say so by leaving the gauge out
            log.warning("queue depth unavailable: %s", exc)
            return
        yield GaugeMetricFamily("steadyfit_queue_depth", "Messages waiting in the broker's queue.", value=depth)


def registry_for(database: Database, queue: TaskQueue, settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry()
    if settings.prometheus_multiproc_dir is not None:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_SECONDS)
    registry.register(FleetCollector(database, queue, settings))
    return registry


class RequestTimer:
    """Times each request into REQUEST_SECONDS, labelled by the route template that answered it.

    Plain ASGI rather than `@app.middleware("http")`, which runs the app in a second task and copies
    every response body through a stream: a measurable share of a cheap request's cost.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(time.perf_counter() - start)


def install(app: FastAPI) -> None:
    app.add_middleware(RequestTimer)
    app.include_router(router)


router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    operation_id="prometheus_metrics",
    response_class=Response,
    dependencies=[Depends(require_metrics_reader)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}, **AUTH_ERRORS},
)
async def prometheus_metrics(request: Request) -> Response:
    """The service's own metrics for Prometheus: jobs by status, queue depth, epochs, latency, heartbeats."""
    body = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
