"""The FastAPI application factory. The engine, session factory and producer are built in the lifespan."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from core.artifacts import artifact_store
from core.db.changes import ChangeHub
from core.db.engine import Database
from core.queue import TaskQueue
from core.settings import Settings
from service import apidocs, observability
from service.analyses.router import router as analyses_router
from service.browsers import BrowserGuard
from service.caching import BodyCache, ReadsInFlight
from service.charts.router import router as charts_router
from service.datasets.router import router as datasets_router
from service.errors import AUTH_ERRORS, REQUEST_LIMITS, install_error_handlers
from service.events.slots import StreamSlots
from service.events.stream import JobFeeds
from service.health.router import router as health_router
from service.jobs.router import router as jobs_router
from service.jobs.versions import VersionTable
from service.limits import BodySizeLimit
from service.models.router import router as models_router
from service.paths.router import router as paths_router
from service.predictions.router import router as predictions_router
from service.predictions.runtime import PredictorCache
from service.projects.router import router as projects_router
from service.queue.router import router as queue_router
from service.rate_limits import RateLimit, buckets_for
from service.request_id import RequestIdMiddleware
from service.sweeps.router import router as sweeps_router
from service.tenants.deps import KeyLookup, authenticate
from service.tenants.router import router as keys_router
from service.ui.router import router as ui_router
from service.webhooks.router import router as webhooks_router

DESCRIPTION = """
Send a declarative job spec, have it trained by a worker with the regularizers you chose,
and poll its per-epoch metrics (`GET /v1/jobs/{id}/metrics?after_epoch=N`).
Errors are RFC 9457 problem details (`application/problem+json`).
Every `/v1` route needs an API key (`Authorization: Bearer <key>`) unless the server runs without keys.
"""
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = Database(settings.resolved_database_url)
        app.state.keys = KeyLookup(app.state.database, settings.key_cache_seconds)
        if settings.auth == "off":
            log.warning("API keys are off: every caller acts as the local administrator")
        app.state.queue = TaskQueue(settings)
        app.state.artifacts = artifact_store(settings)
        app.state.parsing = threading.Lock()  # one upload parses at a time: its caps bound this process
        app.state.hub = ChangeHub(settings, app.state.database)
        app.state.rate_limits = buckets_for(settings)
        app.state.feeds = JobFeeds(app.state.database, app.state.hub)
        app.state.stream_slots = StreamSlots(settings.max_streams_per_owner)
        app.state.versions = VersionTable(app.state.database)
        app.state.bodies = BodyCache(settings.response_cache_mib * 2**20)
        app.state.reads_in_flight = ReadsInFlight()
        app.state.predictors = PredictorCache(settings.predict_cache_mib * 2**20)
        await app.state.versions.start()
        app.state.metrics_registry = observability.registry_for(app.state.database, app.state.queue, settings)
        await app.state.hub.start()
        try:
            yield
        finally:
            await app.state.versions.stop()
            await app.state.hub.stop()
            if app.state.rate_limits is not None:
                await app.state.rate_limits.close()
            app.state.queue.close()
            app.state.database.dispose()

    app = FastAPI(
        title="steadyfit",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by apidocs with its own copy of the scripts, so it works offline
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["Location", "ETag", "X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RateLimit, settings=settings)  # outside the body limit: a refused request sends no body
    app.add_middleware(BrowserGuard, settings=settings)
    routers = (
        jobs_router,
        projects_router,
        queue_router,
        analyses_router,
        predictions_router,
        models_router,
        sweeps_router,
        paths_router,
        datasets_router,
        keys_router,
        charts_router,
        webhooks_router,
    )
    for router in routers:
        app.include_router(router, dependencies=[Depends(authenticate)], responses={**AUTH_ERRORS, **REQUEST_LIMITS})
    app.include_router(health_router)
    observability.install(app)
    app.include_router(ui_router)
    apidocs.install(app)
    app.add_middleware(RequestIdMiddleware)  # outermost of ours: every response, logs and problems see the id
    return app
