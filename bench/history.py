"""Serving cost against the history stored: the same requests on a PostgreSQL database of 10 jobs and on
one of 100,000 jobs, 10,000 of them with 1,000 epochs each (10 M epoch rows).

Two fresh databases (127.0.0.1:5432, created and dropped here), each migrated with `steadyfit migrate`
and filled server-side (`INSERT ... SELECT ... generate_series`, no rows from Python):
  small: 10 jobs x 1,000 epochs;
  large: 10,000 jobs x 1,000 epochs, plus 90,000 cancelled jobs without epochs (100,000 jobs to list).
Every job belongs to the owner of the API key the requests send. Each epoch row holds 6 metrics as JSON.
Job n has the tags `team` (one of 5 colours: 1 job in 5 is `red`) and `batch` (`b` and n mod 1,000: 1 job
in 1,000 is `b7`), and in its spec `model.dropout` = (n mod 5) / 10 and `training.seed` = n.
Then `VACUUM (ANALYZE)` and a checkpoint, so that neither autovacuum nor a checkpoint runs while measuring.
Each database gets its own `steadyfit api --workers 2` (API keys on, as in production), both running at
once; one aiohttp client measures, at 1 and 16 concurrent clients, each for a fixed time in slices that
small and large take in turns (so that load from elsewhere on the machine falls on both alike):
  - the incremental poll of a job in the middle: `GET /v1/jobs/{id}/metrics?after_epoch=990` (10 epochs);
  - the 304 poll: `GET /v1/jobs/{id}/metrics` with `If-None-Match: <its ETag>`;
  - `GET /v1/jobs/{id}`;
  - the first page of the job list, `GET /v1/jobs?limit=50`; and the same while another connection changes
    the page's newest job every 100 ms, as a training job's epochs would (each change ends the page the API
    processes keep in memory, so the next request reads it from the database);
  - page 21, reached by following `next_cursor` 20 times, and (large only) the page starting half-way
    down the list, at job 50,000, whose cursor is made here as the API makes it;
  - the first page of five searches: `?tag=team:red` and `?where=model.dropout=0.2` (each 1 job in 5),
    `?tag=batch:b7` (1 in 1,000) and `?where=training.seed=77777` (1 of 100,000), which the GIN indexes on
    tags and on the spec find, and `?where=training.seed>99990` (10 of 100,000: a range has no index, so
    the page reads every job of the owner).
It prints the fill time, one table with both databases and the ratio large/small of p50 and p99, the
targets (poll latency large/small at most 1.5x; the list's and each search's p99 over 100,000 jobs under
50 ms), and
`EXPLAIN (ANALYZE, BUFFERS)` of the SQL those routes run on the large database, captured from the
service's own repository functions. Everything it starts it stops, and both databases are dropped,
even on failure or Ctrl-C.
Run: `python bench/history.py` (needs `pip install -e '.[bench]'`, PostgreSQL and Redis on 127.0.0.1;
about 3 GB of disk for the large database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from api import CONCURRENCY, METRICS, SPEC, Stats, expect, http_load, ms, server
from harness import api_key_headers, free_port, migrated_env, postgres_database, redis_queue
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from core.db.pagination import encode_cursor
from core.jobs import repository, where
from core.jobs.search import JobSearch
from core.spec.job import JobSpec

OWNER = "bench"
PAGE = 50
DEEP_PAGES = 20  # cursors followed to reach the "deep" page
# The searches measured: name → (query string, jobs on the large database's first page).
SEARCHES = {
    "search: tag team:red (1 in 5)": ("tag=team:red", PAGE),
    "search: where model.dropout=0.2 (1 in 5)": ("where=model.dropout%3D0.2", PAGE),
    "search: tag batch:b7 (1 in 1,000)": ("tag=batch:b7", PAGE),
    "search: where training.seed=77777 (1 of 100,000)": ("where=training.seed%3D77777", 1),
    "search: where training.seed>99990 (10 of 100,000)": ("where=training.seed%3E99990", 10),
}
CHUNK = 250  # jobs whose epochs one INSERT writes
# The first page again, while another connection changes its newest job every CHANGE_SECONDS, as a training
# job's epochs would: each change ends the page the API processes keep, and the next request reads it anew.
CHANGING = "list: first page, a job on it changing 10 times a second"
CHANGE_SECONDS = 0.1
Request = Callable[[aiohttp.ClientSession, int, int], Awaitable[None]]


# --- filling a database -------------------------------------------------------------------------------------


def spec_json(epochs: int) -> str:
    """The normalized spec as a job submitted through the API stores it."""
    raw = json.dumps({**SPEC, "training": {**SPEC["training"], "epochs": epochs}})  # type: ignore[dict-item]
    return json.dumps(JobSpec.model_validate_json(raw).with_task("classification").model_dump(mode="json"))


def metrics_sql() -> str:
    return "json_build_object(" + ", ".join(f"'{name}', random()" for name in METRICS) + ")"


JOBS_SQL = f"""
INSERT INTO jobs (id, owner, name, status, task, spec, created_at, updated_at, started_at, finished_at,
                  epochs_completed, best_epoch, best_metrics, stop_reason, attempts, cancel_requested,
                  device, last_sent_at, tags)
SELECT md5('steadyfit-bench-' || n)::uuid::text, :owner, 'bench-' || n,
       CASE WHEN NOT x.trained THEN 'cancelled' WHEN (n / :step) % 10 = 5 THEN 'running' ELSE 'succeeded' END,
       'classification',
       jsonb_set(jsonb_set(CAST(:spec AS jsonb), ARRAY['model', 'dropout'], to_jsonb(round((n % 5) / 10.0, 1))),
                 ARRAY['training', 'seed'], to_jsonb(n))::json,
       x.created, x.created + interval '20 minutes', x.created + interval '1 second',
       CASE WHEN NOT x.trained THEN x.created WHEN (n / :step) % 10 = 5 THEN NULL
            ELSE x.created + interval '20 minutes' END,
       CASE WHEN x.trained THEN :epochs ELSE 0 END,
       CASE WHEN x.trained THEN :epochs / 2 END,
       CASE WHEN x.trained THEN {metrics_sql()} END,
       CASE WHEN NOT x.trained THEN 'cancelled' WHEN (n / :step) % 10 <> 5 THEN 'max_epochs' END,
       CASE WHEN x.trained THEN 1 ELSE 0 END, NOT x.trained,
       CASE WHEN x.trained THEN 'cpu' END, x.created,
       jsonb_build_object('team', (ARRAY['red', 'blue', 'green', 'gold', 'grey'])[n % 5 + 1], 'batch', 'b' || n % 1000)
FROM generate_series(1, :total) AS n,
     LATERAL (SELECT n % :step = 0 AND n / :step <= :trained AS trained,
                     timestamptz '2026-06-01 00:00:00+00' - n * interval '1 minute' AS created) AS x
"""

EPOCHS_SQL = f"""
INSERT INTO epoch_metrics (job_id, epoch, metrics, recorded_at)
SELECT j.id, e, {metrics_sql()}, j.started_at + e * interval '1 second'
FROM jobs AS j CROSS JOIN generate_series(1, :epochs) AS e
WHERE j.id = ANY(:ids)
ORDER BY j.id, e
"""


@dataclass
class Shape:
    name: str
    total: int  # jobs in the list
    trained: int  # of which with epochs
    epochs: int

    @property
    def step(self) -> int:
        return self.total // self.trained

    @property
    def middle(self) -> str:
        """A job with epochs, half-way through them, and running (k % 10 == 5) in either database."""
        k = 5 + 10 * ((self.trained // 2) // 10) if self.trained >= 10 else 1
        return f"md5('steadyfit-bench-{k * self.step}')::uuid::text"  # as JOBS_SQL makes ids


def fill(engine: Engine, shape: Shape) -> float:
    """Jobs, then epochs in ascending (job_id, epoch) order (the primary key's), then VACUUM and CHECKPOINT."""
    began = time.perf_counter()
    params = {"owner": OWNER, "step": shape.step, "trained": shape.trained, "total": shape.total}
    with engine.begin() as connection:
        connection.execute(text(JOBS_SQL), {**params, "spec": spec_json(shape.epochs), "epochs": shape.epochs})
        ids = list(
            connection.scalars(
                text("SELECT id FROM jobs WHERE owner = :owner AND epochs_completed > 0 ORDER BY id"), {"owner": OWNER}
            )
        )
    last_report = time.perf_counter()
    for first in range(0, len(ids), CHUNK):
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL work_mem = '256MB'"))
            connection.execute(text(EPOCHS_SQL), {"epochs": shape.epochs, "ids": ids[first : first + CHUNK]})
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            done = min(first + CHUNK, len(ids))
            print(f"  {shape.name}: {done:,}/{len(ids):,} jobs' epochs, {last_report - began:.0f} s", flush=True)
    inserted = time.perf_counter() - began
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE) jobs"))
        connection.execute(text("VACUUM (ANALYZE) epoch_metrics"))
        connection.execute(text("CHECKPOINT"))
        rows = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM epoch_metrics), "
                "pg_size_pretty(pg_database_size(current_database()))"
            )
        ).one()
    print(
        f"{shape.name}: {rows[0]:,} jobs, {rows[1]:,} epoch rows, {rows[2]} on disk; insert {inserted:.0f} s, "
        f"VACUUM (ANALYZE) + CHECKPOINT {time.perf_counter() - began - inserted:.0f} s",
        flush=True,
    )
    return time.perf_counter() - began


# --- one database behind one API ----------------------------------------------------------------------------


@dataclass
class Target:
    shape: Shape
    database_url: str
    base: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    job: str = ""
    etag: str = ""
    urls: dict[str, str] = field(default_factory=dict)  # list pages by measurement name
    searches: dict[str, str] = field(default_factory=dict)  # searches' first pages by measurement name

    newest: str = ""  # the first job on the first page

    def prepare(self, engine: Engine) -> None:
        """The middle job, its ETag, and the URLs of the list pages measured."""
        with engine.connect() as connection:
            self.job = connection.scalar(text(f"SELECT {self.shape.middle}"))
            self.newest = connection.scalar(
                text("SELECT id FROM jobs WHERE owner = :owner ORDER BY created_at DESC, id DESC LIMIT 1"),
                {"owner": OWNER},
            )
            half = self.shape.total // 2
            row = connection.execute(
                text(
                    "SELECT created_at, id FROM jobs WHERE owner = :owner "
                    "ORDER BY created_at DESC, id DESC OFFSET :offset LIMIT 1"
                ),
                {"owner": OWNER, "offset": half - 1},
            ).one()
        recent = httpx.get(self.recent_url, headers=self.headers, timeout=30)
        recent.raise_for_status()
        if len(recent.json()["items"]) != 10 or recent.json()["status"] != "running":
            raise RuntimeError(f"unexpected poll answer: {recent.text[:300]}")
        self.etag = recent.headers["ETag"]
        self.urls["list: first page"] = f"{self.base}/v1/jobs?limit={PAGE}"
        self.urls[CHANGING] = self.urls["list: first page"]
        url = self.urls["list: first page"]
        for _ in range(DEEP_PAGES):
            page = httpx.get(url, headers=self.headers, timeout=30)
            page.raise_for_status()
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
            url = f"{self.base}/v1/jobs?limit={PAGE}&cursor={cursor}"
        else:
            self.urls[f"list: page {DEEP_PAGES + 1} (next_cursor)"] = url
        if half > DEEP_PAGES * PAGE:
            url = f"{self.base}/v1/jobs?limit={PAGE}&cursor={encode_cursor(row[0], row[1])}"
            page = httpx.get(url, headers=self.headers, timeout=30)
            page.raise_for_status()
            if len(page.json()["items"]) != PAGE:
                raise RuntimeError("the page half-way down the list is not full")
            self.urls[f"list: page at job {half + 1:,} of {self.shape.total:,}"] = url
        for name, (query, found) in SEARCHES.items():
            self.searches[name] = f"{self.base}/v1/jobs?limit={PAGE}&{query}"
            page = httpx.get(self.searches[name], headers=self.headers, timeout=30)
            page.raise_for_status()
            if self.shape.total >= 100_000 and len(page.json()["items"]) != found:
                raise RuntimeError(f"{name}: {len(page.json()['items'])} jobs on the first page, not {found}")

    def changes(self, name: str) -> AbstractContextManager[None]:
        """What goes on in the database while measurement `name` runs: for CHANGING, the newest job changing."""
        return self._changing() if name == CHANGING else nullcontext()

    @contextmanager
    def _changing(self) -> Iterator[None]:
        stop = threading.Event()
        engine = create_engine(self.database_url)

        def change() -> None:
            with engine.connect() as connection:
                while not stop.wait(CHANGE_SECONDS):
                    update = "UPDATE jobs SET updated_at = clock_timestamp() WHERE id = :id"
                    connection.execute(text(update), {"id": self.newest})
                    connection.commit()

        thread = threading.Thread(target=change, name="changing-job")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            engine.dispose()

    @property
    def recent_url(self) -> str:
        return f"{self.base}/v1/jobs/{self.job}/metrics?after_epoch={self.shape.epochs - 10}"

    def requests(self) -> dict[str, Request]:
        async def recent(session: aiohttp.ClientSession, _client: int, _i: int) -> None:
            async with session.get(self.recent_url, headers=self.headers) as response:
                await expect(response)

        async def unchanged(session: aiohttp.ClientSession, _client: int, _i: int) -> None:
            headers = {**self.headers, "If-None-Match": self.etag}
            async with session.get(f"{self.base}/v1/jobs/{self.job}/metrics", headers=headers) as response:
                await expect(response, 304)

        async def job(session: aiohttp.ClientSession, _client: int, _i: int) -> None:
            async with session.get(f"{self.base}/v1/jobs/{self.job}", headers=self.headers) as response:
                await expect(response)

        def page(url: str) -> Request:
            async def get(session: aiohttp.ClientSession, _client: int, _i: int) -> None:
                async with session.get(url, headers=self.headers) as response:
                    await expect(response)

            return get

        return {
            "poll: last 10 epochs": recent,
            "poll: 304 (If-None-Match)": unchanged,
            "GET /v1/jobs/{id}": job,
            **{name: page(url) for name, url in self.urls.items()},
            **{name: page(url) for name, url in self.searches.items()},
        }


# --- EXPLAIN -------------------------------------------------------------------------------------------------


def explain(engine: Engine, target: Target) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL the repository runs for the poll, the list's deepest page and the
    rare searches."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, parameters))

    deepest = list(target.urls.values())[-1]
    cursor = deepest.split("cursor=", 1)[1] if "cursor=" in deepest else None
    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            repository.version(session, target.job)
            repository.epochs_after(session, target.job, target.shape.epochs - 10, None)
            repository.list_page(session, JobSearch(scope=OWNER), limit=PAGE, cursor=cursor)
            repository.list_page(session, JobSearch(scope=OWNER, tags={"batch": "b7"}), limit=PAGE, cursor=None)
            for expression in ("training.seed=77777", "training.seed>99990"):
                rare = JobSearch(scope=OWNER, where=(where.parse(expression),))
                repository.list_page(session, rare, limit=PAGE, cursor=None)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    titles = [
        "poll: the job's version (ETag)",
        "poll: its epochs after 990",
        f"list: {list(target.urls)[-1].removeprefix('list: ')}",
        "search: tag batch:b7",
        "search: where training.seed=77777",
        "search: where training.seed>99990",
    ]
    with engine.connect() as connection:
        for title, (statement, parameters) in zip(titles, captured, strict=True):
            print(f"\n{title}:\n```\n{' '.join(statement.split())}\n  -- {parameters}")
            for line in connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters):
                print(line[0])
            print("```")


# --- the run -------------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    clients: int
    small: Stats | None
    large: Stats | None


def measure(small: Target, large: Target, seconds: float, rounds: int) -> list[Row]:
    """Each measurement in `rounds` slices, small and large taking turns, so that load from elsewhere on
    the machine falls on both alike; each side's latencies are pooled."""
    rows = []
    small_requests, large_requests = small.requests(), large.requests()
    for clients in CONCURRENCY:
        for name, request in large_requests.items():
            theirs = small_requests.get(name)
            row = Row(name, clients, None, None)
            for _ in range(rounds):
                if theirs is not None:
                    with small.changes(name):
                        row.small = pooled(row.small, asyncio.run(http_load(theirs, clients, seconds / rounds)))
                with large.changes(name):
                    row.large = pooled(row.large, asyncio.run(http_load(request, clients, seconds / rounds)))
            rows.append(row)
    return rows


def pooled(before: Stats | None, more: Stats) -> Stats:
    if before is None:
        return more
    return Stats(before.count + more.count, before.seconds + more.seconds, before.latencies + more.latencies)


def ratio(large: Stats | None, small: Stats | None, q: float) -> float | None:
    if large is None or small is None:
        return None
    return large.quantile(q) / small.quantile(q)


def print_table(rows: list[Row], small: Shape, large: Shape) -> None:
    print(
        f"\n| measure | clients | {small.name} req/s | p50 ms | p99 ms | {large.name} req/s | p50 ms | p99 ms "
        "| p50 ratio | p99 ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def cells(stats: Stats | None) -> str:
        if stats is None:
            return "— | — | —"
        return f"{stats.rate:.0f} | {ms(stats.quantile(0.5))} | {ms(stats.quantile(0.99))}"

    def times(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}x"

    for row in rows:
        print(
            f"| {row.name} | {row.clients} | {cells(row.small)} | {cells(row.large)} "
            f"| {times(ratio(row.large, row.small, 0.5))} | {times(ratio(row.large, row.small, 0.99))} |"
        )


def print_targets(rows: list[Row], large: Shape) -> bool:
    checks: list[tuple[str, str, bool]] = []
    for row in rows:
        if row.name.startswith("poll"):
            p50, p99 = ratio(row.large, row.small, 0.5), ratio(row.large, row.small, 0.99)
            assert p50 is not None and p99 is not None
            checks.append(
                (
                    f"{row.name}, {row.clients} client(s): latency large/small ≤ 1.5x (p50, p99)",
                    f"{p50:.2f}x, {p99:.2f}x",
                    max(p50, p99) <= 1.5,
                )
            )
    for row in rows:
        if row.name.startswith(("list", "search")) and row.large is not None:
            p99 = row.large.quantile(0.99)
            checks.append(
                (
                    f"{row.name} over {large.total:,} jobs, {row.clients} client(s): p99 < 50 ms",
                    f"{ms(p99)} ms",
                    p99 < 0.05,
                )
            )
    print("\n| target | measured | holds |")
    print("| --- | ---: | --- |")
    for target, measured, holds in checks:
        print(f"| {target} | {measured} | {'yes' if holds else 'no'} |")
    return all(holds for _, _, holds in checks)


def _interrupted(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="How long each measurement runs (default 5).")
    parser.add_argument("--jobs", type=int, default=10_000, help="Large database: jobs with epochs (10,000).")
    parser.add_argument("--epochs", type=int, default=1_000, help="Epochs of each job with epochs (1,000).")
    parser.add_argument("--list-jobs", type=int, default=100_000, help="Large database: jobs in all (100,000).")
    parser.add_argument("--rounds", type=int, default=5, help="Slices small and large take turns in (5).")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)  # clean up on SIGTERM as on Ctrl-C
    if args.epochs < 11 or args.list_jobs < args.jobs or args.jobs < 10:
        parser.error("needs --epochs > 10 and 10 <= --jobs <= --list-jobs")
    small = Shape("small", 10, 10, args.epochs)
    large = Shape("large", args.list_jobs, args.jobs, args.epochs)
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} before the run")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="steadyfit-bench-")))
        queue = stack.enter_context(redis_queue())
        targets = []
        for shape in (small, large):
            database_url = stack.enter_context(postgres_database())
            env = migrated_env(database_url, queue, tmp / shape.name)
            engine = create_engine(database_url)
            stack.callback(engine.dispose)
            seconds = fill(engine, shape)
            print(f"{shape.name}: filled in {seconds:.0f} s\n", flush=True)
            target = Target(shape, database_url, headers=api_key_headers(database_url, owner=OWNER))
            port = free_port()
            stack.enter_context(
                server(
                    [sys.executable, "-m", "steadyfit.cli", "api", "--port", str(port), "--workers", "2"],
                    env,
                    tmp / f"{shape.name}.log",
                    f"http://127.0.0.1:{port}/healthz",
                )
            )
            target.base = f"http://127.0.0.1:{port}"
            target.prepare(engine)
            targets.append((target, engine))
        (small_target, _), (large_target, large_engine) = targets
        print(
            f"small: {small.total} jobs x {small.epochs:,} epochs; large: {large.trained:,} jobs x "
            f"{large.epochs:,} epochs + {large.total - large.trained:,} jobs without epochs; {len(METRICS)} metrics "
            f"per epoch; both APIs with 2 workers; {args.seconds:g} s per measurement and database, in "
            f"{args.rounds} turns"
        )
        rows = measure(small_target, large_target, args.seconds, args.rounds)
        print_table(rows, small, large)
        print_targets(rows, large)
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) on the large database (job {large_target.job}):")
        explain(large_engine, large_target)
        load = os.getloadavg()
        print(f"\nload average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} after the run")


if __name__ == "__main__":
    main()
