"""Serving per-epoch metrics: steadyfit in production mode against MLflow's tracking server, side by side.

Both servers run on this machine with 2 API worker processes: steadyfit on a fresh PostgreSQL database
(127.0.0.1:5432, created and dropped here) with Redis (127.0.0.1:6379, a queue of its own), MLflow with
its SQLite store in a temporary directory. Both hold the same data: one job/run of 1,000 epochs x 6 metrics.
One aiohttp client (and, for steadyfit's writes, processes calling the worker's own write path) measures,
at 1 and at 16 concurrent clients, each for a fixed time:
  (a) writing one epoch: `record_epoch` on a `repository.claim`'d job, as workers/runner.py writes it, each
      writer a process of its own as each worker is, against MLflow `log-batch` (each client writes to its
      own job/run);
  (b) the dashboard's full-history poll: one `GET /v1/jobs/{id}/metrics` against MLflow's 6 `get-history`
      calls (sent at once);
  (c) the incremental poll of the last 10 epochs: `?after_epoch=990` against one
      `get-history-bulk-interval` call with `start_step` (one metric: MLflow needs 6 for what steadyfit sends);
  (d) steadyfit's 304 poll (`If-None-Match`), against (c)'s MLflow figure;
  (e) (c) again while the job trains, an epoch written every 50 ms: an unchanged job's page is sent from
      memory, so this is what polls cost when pages are read from the database too.
  (f) while (e) trains: from each epoch's commit to the first poll (one client, as fast as it can, with
      `If-None-Match`) that shows it: how stale a poll answered from memory can be.
Then the API workers' resident memory, read from /proc. steadyfit runs with API keys on
(`STEADYFIT_AUTH=keys`), as in production: every `/v1` request sends a key made for the run, so the key
check is part of what is measured (MLflow's server has no authentication here).
With `--embedded`, (b) to (f) run against `steadyfit serve --workers 2` too (SQLite in WAL mode, the
file-system queue, its own idle worker; no API keys, as on a loopback address by default), each right after
production's, and a second table puts the two modes and MLflow side by side. Everything it starts it stops,
even on failure.
Run: `python bench/api.py [--embedded]` (needs `pip install -e '.[bench]'`, PostgreSQL and Redis on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from threading import Barrier as BarrierType
from typing import Any

import aiohttp
import httpx
from harness import (
    ROOT,
    api_key_headers,
    embedded_env,
    free_port,
    migrated_env,
    postgres_database,
    redis_queue,
    stop_group,
)

from core.db.engine import Database
from core.db.models import Job
from core.jobs import repository
from core.spec.job import JobSpec
from core.states import JobStatus
from core.tenants.principal import LOCAL_OWNER

EPOCHS = 1000
METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "epoch_seconds")
CONCURRENCY = (1, 16)
WRITERS = (1, 2, 16)  # (a) also at 2: as many writers as this machine has cores
OWNER = "bench-worker"
SPEC = {
    "dataset": {"name": "iris"},
    "model": {"hidden_layers": [8]},
    "training": {"epochs": EPOCHS, "batch_size": 16, "seed": 1},
}
MIB = 1024 * 1024
TRAINING_INTERVAL = 0.05  # (e): a fast job's epochs, 20 a second


@dataclass
class Stats:
    count: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def epoch_metrics(epoch: int) -> dict[str, float]:
    rng = random.Random(epoch)
    return {name: rng.random() for name in METRICS}


# --- processes and databases ------------------------------------------------------------------------------


@contextmanager
def server(command: list[str], env: dict[str, str], log_path: Path, health_url: str) -> Iterator[int]:
    """A server as a child process group, healthy before it is used, stopped (group and all) afterwards."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 90
            while not _healthy(health_url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[2:4]} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.3)
            yield process.pid
        finally:
            stop_group(process, 20)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def worker_rss(pid: int) -> list[float]:
    """Resident memory (MiB) of the processes that serve requests: the uvicorn workers under `pid`."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
            status = Path(f"/proc/{child}/status").read_text().splitlines()
            found += [int(line.split()[1]) * 1024 / MIB for line in status if line.startswith("VmRSS:")]
        found += worker_rss(int(child))
    return found


# --- load ---------------------------------------------------------------------------------------------------


async def http_load(
    request: Callable[[aiohttp.ClientSession, int, int], Awaitable[None]], clients: int, seconds: float
) -> Stats:
    """`clients` loops, each sending `request(session, client, i)` back to back for `seconds`."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients * 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        for client in range(clients):  # warm the connections
            await request(session, client, -1)
        start = time.perf_counter()
        stop = start + seconds

        async def loop(client: int) -> None:
            i = 0
            while time.perf_counter() < stop:
                began = time.perf_counter()
                await request(session, client, i)
                latencies.append(time.perf_counter() - began)
                i += 1

        await asyncio.gather(*(loop(client) for client in range(clients)))
        return Stats(len(latencies), time.perf_counter() - start, latencies)


def process_load(database_url: str, jobs: list[str], first_epoch: int, seconds: float) -> Stats:
    """Each job's epochs written back to back from a process of its own, as each worker writes its job's."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(len(jobs) + 1)  # every writer started and connected: the clock starts
    results: multiprocessing.Queue[list[float]] = context.Queue()
    writers = [
        context.Process(target=write_epochs, args=(database_url, job, first_epoch, seconds, ready, results))
        for job in jobs
    ]
    for writer in writers:
        writer.start()
    try:
        ready.wait(timeout=120)
        latencies = [latency for _ in writers for latency in results.get(timeout=seconds + 120)]
    finally:
        for writer in writers:
            writer.join(timeout=10)
            writer.kill()
    return Stats(len(latencies), seconds, latencies)


def write_epochs(
    database_url: str,
    job_id: str,
    first_epoch: int,
    seconds: float,
    ready: BarrierType,
    results: multiprocessing.Queue[list[float]],
) -> None:
    """In a process of its own: epochs of `job_id` from `first_epoch`, as `JobRunner._record_epoch` writes
    them (one statement, outside a transaction), for `seconds` once every writer is ready; each latency."""
    database = Database(database_url)
    try:
        write_epoch(database, job_id, first_epoch)  # connected before the clock starts
        ready.wait(timeout=120)
        latencies = []
        epoch = first_epoch + 1
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            began = time.perf_counter()
            write_epoch(database, job_id, epoch)
            latencies.append(time.perf_counter() - began)
            epoch += 1
        results.put(latencies)
    finally:
        database.dispose()


def write_epoch(database: Database, job_id: str, epoch: int) -> None:
    values = epoch_metrics(epoch)
    with database.single_statement_session() as session:
        if not repository.record_epoch(session, job_id, OWNER, epoch, values, epoch, values):
            raise RuntimeError(f"lost the lease of {job_id}")


async def expect(response: aiohttp.ClientResponse, status: int = 200) -> None:
    await response.read()
    if response.status != status:
        raise RuntimeError(f"{response.method} {response.url}: {response.status}")


# --- steadyfit ------------------------------------------------------------------------------------------------


class Steadyfit:
    def __init__(self, base: str, database_url: str, headers: dict[str, str], owner: str) -> None:
        self.base = base
        self.headers = headers  # the API key, if the server wants one: every /v1 request sends it
        self.database_url = database_url
        self.database = Database(database_url)
        self.jobs = [self._running_job(owner) for _ in range(1 + max(CONCURRENCY))]
        self.job = self.jobs[0]
        self.writes_done = 0
        self.etag = ""
        self.committed: dict[int, float] = {}  # epoch → when its write began, after `training`

    def _running_job(self, owner: str) -> str:
        """A job of `owner` as the API stores one, claimed as a worker claims it; no broker message is sent,
        so no worker (`steadyfit serve` has one) ever trains it."""
        spec = JobSpec.model_validate(SPEC).model_dump(mode="json")
        job = Job(id=str(uuid.uuid4()), owner=owner, status=JobStatus.QUEUED, task="classification", spec=spec)
        with self.database.session() as session:
            repository.add(session, job)
        with self.database.session() as session:
            if repository.claim(session, job.id, OWNER, lease_seconds=3600, max_attempts=10) is None:
                raise RuntimeError(f"could not claim job {job.id}")
        return job.id

    def fill(self) -> None:
        for epoch in range(1, EPOCHS + 1):
            write_epoch(self.database, self.job, epoch)
        response = httpx.get(f"{self.base}/v1/jobs/{self.job}/metrics", headers=self.headers, timeout=10)
        response.raise_for_status()
        if len(response.json()["items"]) != EPOCHS:
            raise RuntimeError("the job does not hold every epoch")
        self.etag = response.headers["ETag"]

    def writes(self, clients: int, seconds: float) -> Stats:
        """`clients` writers, each on a job of its own, starting after the epochs written before."""
        self.writes_done += 1
        return process_load(self.database_url, self.jobs[1 : 1 + clients], self.writes_done * 1_000_000, seconds)

    async def full(self, session: aiohttp.ClientSession, _client: int, _i: int) -> None:
        async with session.get(f"{self.base}/v1/jobs/{self.job}/metrics", headers=self.headers) as response:
            await expect(response)

    async def recent(self, session: aiohttp.ClientSession, _client: int, _i: int) -> None:
        url = f"{self.base}/v1/jobs/{self.job}/metrics?after_epoch={EPOCHS - 10}"
        async with session.get(url, headers=self.headers) as response:
            await expect(response)

    async def unchanged(self, session: aiohttp.ClientSession, _client: int, _i: int) -> None:
        url = f"{self.base}/v1/jobs/{self.job}/metrics?after_epoch={EPOCHS}"
        async with session.get(url, headers={**self.headers, "If-None-Match": self.etag}) as response:
            await expect(response, 304)

    @contextmanager
    def training(self, interval: float) -> Iterator[None]:
        """The polled job goes on training meanwhile: an epoch written every `interval` seconds by a process of
        its own, as a worker's, so each poll after an epoch reads the database again. Afterwards `committed`
        says when each epoch's write began."""
        context = multiprocessing.get_context("spawn")
        started, stop = context.Event(), context.Event()
        results: multiprocessing.Queue[dict[int, float]] = context.Queue()
        trainer = context.Process(
            target=train_epochs, args=(self.database_url, self.job, interval, started, stop, results)
        )
        trainer.start()
        try:
            if not started.wait(timeout=120):
                raise RuntimeError("the training process did not start")
            yield
        finally:
            stop.set()
            self.committed = results.get(timeout=120)
            trainer.join(timeout=10)
            trainer.kill()

    async def first_seen(self, seconds: float) -> dict[int, float]:
        """While `training`: when one client, polling back to back with `If-None-Match` and `after_epoch` as a
        dashboard does, first saw each epoch written after its first poll."""
        seen: dict[int, float] = {}
        url = f"{self.base}/v1/jobs/{self.job}/metrics"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, params={"after_epoch": EPOCHS}, headers=self.headers) as response:
                first = await response.json()
                etag = response.headers["ETag"]
            last = max([EPOCHS, *(item["epoch"] for item in first["items"])])
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                headers = {**self.headers, "If-None-Match": etag}
                async with session.get(url, params={"after_epoch": last}, headers=headers) as response:
                    if response.status == 304:
                        continue
                    page = await response.json()
                    etag = response.headers["ETag"]
                now = time.monotonic()
                for item in page["items"]:
                    seen[item["epoch"]] = now
                    last = item["epoch"]
        return seen

    def staleness(self, seen: dict[int, float]) -> Stats:
        """(f): from each epoch's commit (an upper bound: from when its write began) to the poll that saw it."""
        lags = [at - self.committed[epoch] for epoch, at in seen.items()]
        return Stats(len(lags), 1.0, lags)


def train_epochs(
    database_url: str,
    job_id: str,
    interval: float,
    started: EventType,
    stop: EventType,
    results: multiprocessing.Queue[dict[int, float]],
) -> None:
    """In a process of its own: epochs of `job_id` after the filled ones, one every `interval` seconds until
    `stop`; then when each write began (`time.monotonic`, the same clock in every process here)."""
    database = Database(database_url)
    committed: dict[int, float] = {}
    try:
        for epoch in itertools.count(EPOCHS + 1):
            committed[epoch] = time.monotonic()
            write_epoch(database, job_id, epoch)
            started.set()
            if stop.wait(interval):
                break
        results.put(committed)
    finally:
        database.dispose()


# --- MLflow ---------------------------------------------------------------------------------------------------


class Mlflow:
    def __init__(self, base: str) -> None:
        self.base = base
        self.api = f"{base}/api/2.0/mlflow"
        experiment = self._post("experiments/create", {"name": "bench"})["experiment_id"]
        self.runs = [
            self._post("runs/create", {"experiment_id": experiment, "start_time": 0})["run"]["info"]["run_id"]
            for _ in range(1 + max(CONCURRENCY))
        ]
        self.run = self.runs[0]
        self.next_step = dict.fromkeys(self.runs, 1)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.api}/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    @staticmethod
    def batch(run_id: str, epochs: range) -> dict[str, Any]:
        metrics = [
            {"key": key, "value": value, "timestamp": epoch, "step": epoch}
            for epoch in epochs
            for key, value in epoch_metrics(epoch).items()
        ]
        return {"run_id": run_id, "metrics": metrics}

    def fill(self) -> None:
        per_request = 1000 // len(METRICS)  # log-batch takes at most 1,000 metrics
        for first in range(1, EPOCHS + 1, per_request):
            self._post("runs/log-batch", self.batch(self.run, range(first, min(first + per_request, EPOCHS + 1))))
        history = httpx.get(f"{self.api}/metrics/get-history", params={"run_id": self.run, "metric_key": "val_loss"})
        if len(history.json()["metrics"]) != EPOCHS:
            raise RuntimeError("the run does not hold every step")

    async def log_batch(self, session: aiohttp.ClientSession, client: int, _i: int) -> None:
        run_id = self.runs[1 + client]
        step = self.next_step[run_id]
        self.next_step[run_id] = step + 1
        async with session.post(f"{self.api}/runs/log-batch", json=self.batch(run_id, range(step, step + 1))) as r:
            await expect(r)

    async def _history(self, session: aiohttp.ClientSession, key: str) -> None:
        async with session.get(f"{self.api}/metrics/get-history", params={"run_id": self.run, "metric_key": key}) as r:
            await expect(r)

    async def full(self, session: aiohttp.ClientSession, _client: int, _i: int) -> None:
        await asyncio.gather(*(self._history(session, key) for key in METRICS))

    async def recent(self, session: aiohttp.ClientSession, _client: int, i: int) -> None:
        params = {
            "run_ids": self.run,
            "metric_key": METRICS[i % len(METRICS)],
            "start_step": str(EPOCHS - 9),
            "end_step": str(EPOCHS),
            "max_results": "10",
        }
        url = f"{self.base}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
        async with session.get(url, params=params) as response:
            await expect(response)


# --- the run --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    clients: int
    ours: Stats
    theirs: Stats | None
    embedded: Stats | None = None  # with --embedded: the same requests to `steadyfit serve`


Request = Callable[[aiohttp.ClientSession, int, int], Awaitable[None]]
STALENESS = "(f) from an epoch's commit to the first poll showing it"


def measure(
    ours: Steadyfit, theirs: Mlflow, seconds: float, embedded: Steadyfit | None
) -> tuple[list[Row], dict[str, Stats]]:
    """The table's rows, and (f) per mode; with `embedded`, each of its figures right after production's."""

    def row(name: str, clients: int, poll: Callable[[Steadyfit], Request], their_figure: Stats | None) -> Row:
        measured = [asyncio.run(http_load(poll(mode), clients, seconds)) for mode in (ours, embedded) if mode]
        return Row(name, clients, measured[0], their_figure, measured[1] if embedded else None)

    rows = []
    for clients in WRITERS:
        rows.append(Row("(a) write one epoch", clients, ours.writes(clients, seconds), None))
        rows[-1].theirs = asyncio.run(http_load(theirs.log_batch, clients, seconds))
    for clients in CONCURRENCY:
        for name, poll, their_poll in (
            ("(b) full-history poll", lambda mode: mode.full, theirs.full),
            ("(c) last 10 epochs", lambda mode: mode.recent, theirs.recent),
        ):
            rows.append(row(name, clients, poll, None))
            rows[-1].theirs = asyncio.run(http_load(their_poll, clients, seconds))
    recent = {row.clients: row.theirs for row in rows if row.name.startswith("(c)")}
    for clients in CONCURRENCY:
        rows.append(row("(d) 304 poll vs (c)", clients, lambda mode: mode.unchanged, recent[clients]))
    modes = {"production": ours} if embedded is None else {"production": ours, "embedded": embedded}
    with ExitStack() as training:  # last: the job's ETag, which (d) sends, changes from here on
        for mode in modes.values():
            training.enter_context(mode.training(TRAINING_INTERVAL))
        name = f"(e) (c) while an epoch is written every {TRAINING_INTERVAL * 1000:.0f} ms"
        for clients in CONCURRENCY:
            rows.append(row(name, clients, lambda mode: mode.recent, recent[clients]))
        seen = {name: asyncio.run(mode.first_seen(seconds)) for name, mode in modes.items()}
    staleness = {name: mode.staleness(seen[name]) for name, mode in modes.items()}
    return rows, staleness


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_table(rows: list[Row]) -> None:
    print("| measure | clients | steadyfit req/s | p50 ms | p99 ms | MLflow req/s | p50 ms | p99 ms | req/s ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in sorted(rows, key=lambda r: (r.name, r.clients)):
        a, b = row.ours, row.theirs
        assert b is not None
        print(
            f"| {row.name} | {row.clients} | {a.rate:.0f} | {ms(a.quantile(0.5))} | {ms(a.quantile(0.99))} "
            f"| {b.rate:.1f} | {ms(b.quantile(0.5))} | {ms(b.quantile(0.99))} | {a.rate / b.rate:.1f}x |"
        )


def print_embedded_table(rows: list[Row]) -> None:
    print("\n`steadyfit serve` (embedded) beside production and MLflow\n")
    print(
        "| measure | clients | embedded req/s | p50 ms | p99 ms | production req/s | MLflow req/s | embedded/MLflow |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in sorted(rows, key=lambda r: (r.name, r.clients)):
        a, b = row.embedded, row.theirs
        if a is None or b is None:
            continue
        print(
            f"| {row.name} | {row.clients} | {a.rate:.0f} | {ms(a.quantile(0.5))} | {ms(a.quantile(0.99))} "
            f"| {row.ours.rate:.0f} | {b.rate:.1f} | {a.rate / b.rate:.1f}x |"
        )


def print_staleness(staleness: dict[str, Stats]) -> None:
    print(f"\n{STALENESS} (one client; ms)\n")
    print("| mode | epochs | p50 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for mode, lags in staleness.items():
        worst = max(lags.latencies)
        print(f"| {mode} | {lags.count} | {ms(lags.quantile(0.5))} | {ms(lags.quantile(0.99))} | {ms(worst)} |")


def print_targets(checks: list[tuple[str, str, bool]]) -> None:
    print("\n| target | measured | holds |")
    print("| --- | ---: | --- |")
    for target, measured, holds in checks:
        print(f"| {target} | {measured} | {'yes' if holds else 'no'} |")


def production_targets(rows: list[Row], ours_rss: list[float]) -> list[tuple[str, str, bool]]:
    at = {(row.name[:3], row.clients): row for row in rows}
    top = max(CONCURRENCY)

    def ratio(name: str) -> float:
        row = at[(name, top)]
        assert row.theirs is not None
        return row.ours.rate / row.theirs.rate

    checks = [
        (f"(b) ≥ 10x MLflow's polls/s at {top} clients", f"{ratio('(b)'):.1f}x", ratio("(b)") >= 10),
        (f"(c) ≥ 3x MLflow's incremental req/s at {top} clients", f"{ratio('(c)'):.1f}x", ratio("(c)") >= 3),
        (f"(d) ≥ 10x MLflow's incremental req/s at {top} clients", f"{ratio('(d)'):.1f}x", ratio("(d)") >= 10),
    ]
    for name in ("(c)", "(d)"):
        p99 = at[(name, top)].ours.quantile(0.99)
        checks.append((f"{name} p99 < 50 ms at {top} clients", f"{ms(p99)} ms", p99 < 0.05))
    for clients in WRITERS:
        p50 = at[("(a)", clients)].ours.quantile(0.5)
        checks.append((f"(a) p50 < 5 ms at {clients} client(s)", f"{ms(p50)} ms", p50 < 0.005))
    checks.append(("API worker RSS < 150 MiB", f"{max(ours_rss):.0f} MiB", max(ours_rss) < 150))
    return checks


def embedded_targets(rows: list[Row], staleness: Stats) -> list[tuple[str, str, bool]]:
    """Issue #18's: the embedded server against MLflow, at the most clients."""
    top = max(CONCURRENCY)
    at = {row.name[:3]: row for row in rows if row.clients == top and row.embedded is not None}
    checks = []
    for name, times in (("(b)", 100), ("(c)", 10), ("(d)", 10)):
        embedded, theirs = at[name].embedded, at[name].theirs
        assert embedded is not None and theirs is not None
        ratio = embedded.rate / theirs.rate
        checks.append((f"embedded {name} ≥ {times}x MLflow's req/s at {top} clients", f"{ratio:.1f}x", ratio >= times))
    for name in ("(b)", "(c)", "(d)"):
        embedded = at[name].embedded
        assert embedded is not None
        p99 = embedded.quantile(0.99)
        checks.append((f"embedded {name} p99 < 50 ms at {top} clients", f"{ms(p99)} ms", p99 < 0.05))
    p99 = staleness.quantile(0.99)
    checks.append(("embedded (f) p99 < 100 ms (a 50 ms watcher round)", f"{ms(p99)} ms", p99 < 0.1))
    return checks


def rss_line(name: str, pid: int) -> str:
    return f"{name} {', '.join(f'{r:.0f}' for r in worker_rss(pid))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="How long each measurement runs (default 5).")
    parser.add_argument("--embedded", action="store_true", help="Measure `steadyfit serve` too (b to f).")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="steadyfit-bench-")))
        database_url = stack.enter_context(postgres_database())
        env = migrated_env(database_url, stack.enter_context(redis_queue()), tmp / "steadyfit")
        headers = api_key_headers(database_url)
        port = free_port()
        ours_pid = stack.enter_context(
            server(
                [sys.executable, "-m", "steadyfit.cli", "api", "--port", str(port), "--workers", "2"],
                env,
                tmp / "steadyfit.log",
                f"http://127.0.0.1:{port}/healthz",
            )
        )
        theirs_port = free_port()
        theirs_pid = stack.enter_context(
            server(
                [
                    *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(theirs_port)),
                    *("--workers", "2", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}"),
                    *("--default-artifact-root", str(tmp / "mlflow-artifacts")),
                ],
                {**env, "MLFLOW_TRACKING_URI": ""},
                tmp / "mlflow.log",
                f"http://127.0.0.1:{theirs_port}/health",
            )
        )
        ours = Steadyfit(f"http://127.0.0.1:{port}", database_url, headers, "bench")
        stack.callback(ours.database.dispose)
        embedded, embedded_pid = None, 0
        if args.embedded:
            embedded_dir, embedded_port = tmp / "embedded", free_port()
            embedded_pid = stack.enter_context(
                server(
                    [sys.executable, "-m", "steadyfit.cli", "serve", "--port", str(embedded_port), "--workers", "2"],
                    embedded_env(embedded_dir),
                    tmp / "serve.log",
                    f"http://127.0.0.1:{embedded_port}/healthz",
                )
            )
            embedded_url = f"sqlite:///{(embedded_dir / 'steadyfit.db').resolve()}"
            embedded = Steadyfit(f"http://127.0.0.1:{embedded_port}", embedded_url, {}, LOCAL_OWNER)
            stack.callback(embedded.database.dispose)
            embedded.fill()
        theirs = Mlflow(f"http://127.0.0.1:{theirs_port}")
        ours.fill()
        theirs.fill()
        print(f"{EPOCHS} epochs x {len(METRICS)} metrics in one job/run; {args.seconds:g} s per measurement\n")
        rows, staleness = measure(ours, theirs, args.seconds, embedded)
        print_table(rows)
        rss = [rss_line("steadyfit", ours_pid), rss_line("MLflow", theirs_pid)]
        if embedded is not None:
            print_embedded_table(rows)
            rss.append(rss_line("embedded", embedded_pid))
        print_staleness(staleness)
        print(f"\nAPI worker RSS (MiB): {'; '.join(rss)}")
        checks = production_targets(rows, worker_rss(ours_pid))
        if embedded is not None:
            checks += embedded_targets(rows, staleness["embedded"])
        print_targets(checks)


if __name__ == "__main__":
    main()
