"""Conditional, cached reads of jobs: the ETag and body cache behind GET /v1/jobs, /v1/jobs/{id} and its metrics.

A poll of a job whose current ETag this process knows (service/jobs/versions.py) is answered with no query
and no thread: a 304 for an `If-None-Match` that names it, or the body kept under it. Otherwise the
database is read in the thread pool, and the body kept for the next identical poll. While one read of a
resource is under way, the polls of it that arrive wait for that read and look in memory again."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from core.db.engine import Database, after_commit
from core.tenants.principal import Principal
from service import caching
from service.caching import BodyCache, ReadsInFlight
from service.deps import DatabaseDep
from service.jobs import service
from service.jobs.service import ListQuery
from service.jobs.versions import KeptPage, Version, VersionTable


@dataclass(frozen=True)
class MetricsQuery:
    after_epoch: int
    limit: int | None
    max_points: int | None
    format: Literal["json", "csv"]


@dataclass(frozen=True)
class JobReads:
    """One request's reads of jobs, with the process's ETags, kept bodies and reads under way."""

    request: Request  # for its If-None-Match
    database: Database
    versions: VersionTable
    bodies: BodyCache
    flights: ReadsInFlight

    async def page(self, principal: Principal, query: ListQuery) -> Response:
        """A page of jobs: from memory while this process knows it current (VersionTable.page), else read in the
        thread pool, each job's JSON built once per version (service.list_body)."""
        key = ("jobs", principal.scope, query)
        kept = self.versions.page(key)
        if kept is not None:
            if caching.matches(self.request, kept.etag):
                return caching.not_modified(kept.etag, caching.NO_CACHE)
            body = self.bodies.get(key, kept.etag)
            if body is not None:
                return caching.tagged_body(body, kept.etag, caching.NO_CACHE)
        return await run_in_threadpool(self._read_page, principal, query, key)

    async def job(self, job_id: str, principal: Principal) -> Response:
        read = partial(self._read_job, job_id, principal)
        return await self._answer(job_id, principal, service.job_detail_key(job_id), read)

    async def metrics(self, job_id: str, principal: Principal, query: MetricsQuery) -> Response:
        read = partial(self._read_metrics, job_id, principal, query)
        return await self._answer(job_id, principal, _page_key(job_id, query), read)

    async def require(self, job_id: str, principal: Principal) -> None:
        """A 404 for a job the caller cannot see (before an event stream starts, rather than an empty stream)."""
        await run_in_threadpool(self._require, job_id, principal)

    def forget_on_commit(self, session: Session, job_id: str) -> None:
        """This process forgets the job's ETag as soon as `session` commits, before it answers; the others
        when PostgreSQL notifies them."""
        after_commit(session, lambda: self.versions.changed(job_id))

    async def _answer(self, job_id: str, principal: Principal, key: Hashable, read: Callable[[], Response]) -> Response:
        """From memory if this process can (a 304, or the body kept under `key`), else from the database by
        `read`, in the thread pool. While another request's read of `key` is under way, it waits for that read
        and looks in memory again (with PostgreSQL: memory is used only while the database notifies changes)."""
        answered = self._from_memory(job_id, principal, key)
        if answered is None and self.versions.live and await self.flights.wait(key):
            answered = self._from_memory(job_id, principal, key)
        if answered is not None:
            return answered
        with self.flights.reading(key):
            return await run_in_threadpool(read)

    def _known_version(self, job_id: str, principal: Principal) -> Version | None:
        """The job's version as this process knows it without a query; None when the database must say
        (not known here, or another owner's job, whose 404 comes from the database read)."""
        version = self.versions.get(job_id)
        return version if version is not None and principal.sees(version.owner) else None

    def _from_memory(self, job_id: str, principal: Principal, key: Hashable) -> Response | None:
        """The answer with no query and no thread, when this process knows the job's current ETag: a 304 for an
        `If-None-Match` that names it, or the body kept under `key` for it."""
        version = self._known_version(job_id, principal)
        if version is None:
            return None
        if caching.matches(self.request, version.etag):
            return caching.not_modified(version.etag, _cache_control(version))
        body = self.bodies.get(key, version.etag)
        return None if body is None else caching.tagged_body(body, version.etag, _cache_control(version))

    def _read_page(self, principal: Principal, query: ListQuery, key: Hashable) -> Response:
        mark = self.versions.mark()
        with self.database.autocommit_session() as session:
            page = service.list_page(session, principal, query)
            matched = caching.matches(self.request, page.etag)
            if matched and not self.versions.live:
                return caching.not_modified(page.etag, caching.NO_CACHE)
            body = service.list_body(session, self.bodies, page)
        kept = KeptPage(page.etag, frozenset(page.etags), principal.scope, page.moves_with_changes, mark)
        self.versions.keep_page(key, kept)
        self.bodies.put(key, page.etag, body)
        if matched:
            return caching.not_modified(page.etag, caching.NO_CACHE)
        return caching.tagged_body(body, page.etag, caching.NO_CACHE)

    def _read_job(self, job_id: str, principal: Principal) -> Response:
        with self.database.autocommit_session() as session:
            job, version = service.get_with_version(session, job_id, principal, self.versions)
            if caching.matches(self.request, version.etag):
                return caching.not_modified(version.etag, _cache_control(version))
            body = service.job_detail(session, self.bodies, job, version.etag)
        return caching.tagged_body(body, version.etag, _cache_control(version))

    def _read_metrics(self, job_id: str, principal: Principal, query: MetricsQuery) -> Response:
        """The page; with the job's version known (kept current by notifications), the epochs query alone. A
        JSON page is kept under its ETag for the next identical poll (a page shows its version's epochs only)."""
        with self.database.autocommit_session() as session:
            version = self._known_version(job_id, principal) or service.version(
                session, job_id, principal, self.versions
            )
            cache_control = _cache_control(version)
            if caching.matches(self.request, version.etag):
                return caching.not_modified(version.etag, cache_control)
            if query.format == "csv":
                job = service.get(session, job_id, principal)
                page = service.metrics(session, job_id, version, *_window(query))
                csv_response = Response(service.metrics_csv(page, job.task), media_type="text/csv")
                caching.tag(csv_response, version.etag, cache_control)
                return csv_response
            body = service.metrics_body(session, job_id, version, *_window(query))
        self.bodies.put(_page_key(job_id, query), version.etag, body)
        return caching.tagged_body(body, version.etag, cache_control)

    def _require(self, job_id: str, principal: Principal) -> None:
        with self.database.session() as session:
            service.version(session, job_id, principal)


def _page_key(job_id: str, query: MetricsQuery) -> Hashable:
    return ("metrics", job_id, query)


def _window(query: MetricsQuery) -> tuple[int, int | None, int | None]:
    """Which epochs a metrics query asks for: after which epoch, at most how many, downsampled to how many."""
    return query.after_epoch, query.limit, query.max_points


def _cache_control(version: Version) -> str:
    return caching.FINAL if version.terminal else caching.NO_CACHE


async def get_job_reads(request: Request, database: DatabaseDep) -> JobReads:
    state = request.app.state
    return JobReads(request, database, state.versions, state.bodies, state.reads_in_flight)


JobReadsDep = Annotated[JobReads, Depends(get_job_reads)]
