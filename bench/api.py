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
Then the API workers' resident memory, read from /proc. steadyfit runs with API keys on
(`STEADYFIT_AUTH=keys`), as in production: every `/v1` request sends a key made for the run, so the key
check is part of what is measured (MLflow's server has no authentication here). Everything it starts it
stops, even on failure.
Run: `python bench/api.py` (needs `pip install -e '.[bench]'`, PostgreSQL and Redis on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Barrier as BarrierType
from typing import Any

import aiohttp
import httpx
from harness import (
    ROOT,
    api_key_headers,
    free_port,
    migrated_env,
    postgres_database,
    redis_queue,
    stop_group,
)

from core.db.engine import Database
from core.jobs import repository

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
    def __init__(self, base: str, database_url: str, headers: dict[str, str]) -> None:
        self.base = base
        self.headers = headers  # the API key: every /v1 request sends it
        self.database_url = database_url
        self.database = Database(database_url)
        self.jobs = [self._running_job() for _ in range(1 + max(CONCURRENCY))]
        self.job = self.jobs[0]
        self.writes_done = 0
        self.etag = ""

    def _running_job(self) -> str:
        """A job submitted through the API and claimed as a worker claims it (no worker runs here)."""
        response = httpx.post(f"{self.base}/v1/jobs", json=SPEC, headers=self.headers, timeout=10)
        response.raise_for_status()
        job_id: str = response.json()["id"]
        with self.database.session() as session:
            if repository.claim(session, job_id, OWNER, lease_seconds=3600, max_attempts=10) is None:
                raise RuntimeError(f"could not claim job {job_id}")
        return job_id

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
        """The polled job goes on training meanwhile: an epoch written every `interval` seconds (from a thread,
        as a worker would), so each poll after an epoch reads the database again."""
        stop = threading.Event()

        def train() -> None:
            epoch = EPOCHS
            while not stop.wait(interval):
                epoch += 1
                write_epoch(self.database, self.job, epoch)

        thread = threading.Thread(target=train, name="training")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


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


def measure(ours: Steadyfit, theirs: Mlflow, seconds: float) -> list[Row]:
    rows = []
    for clients in WRITERS:
        rows.append(Row("(a) write one epoch", clients, ours.writes(clients, seconds), None))
        rows[-1].theirs = asyncio.run(http_load(theirs.log_batch, clients, seconds))
    for clients in CONCURRENCY:
        rows.append(
            Row(
                "(b) full-history poll",
                clients,
                asyncio.run(http_load(ours.full, clients, seconds)),
                asyncio.run(http_load(theirs.full, clients, seconds)),
            )
        )
        rows.append(
            Row(
                "(c) last 10 epochs",
                clients,
                asyncio.run(http_load(ours.recent, clients, seconds)),
                asyncio.run(http_load(theirs.recent, clients, seconds)),
            )
        )
    recent = {row.clients: row.theirs for row in rows if row.name.startswith("(c)")}
    for clients in CONCURRENCY:
        rows.append(Row("(d) 304 poll vs (c)", clients, asyncio.run(http_load(ours.unchanged, clients, seconds)), None))
        rows[-1].theirs = recent[clients]
    with ours.training(TRAINING_INTERVAL):  # last: the job's ETag, which (d) sends, changes from here on
        name = f"(e) (c) while an epoch is written every {TRAINING_INTERVAL * 1000:.0f} ms"
        for clients in CONCURRENCY:
            rows.append(Row(name, clients, asyncio.run(http_load(ours.recent, clients, seconds)), recent[clients]))
    return rows


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


def print_targets(rows: list[Row], ours_rss: list[float], theirs_rss: list[float]) -> None:
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
    print(
        f"\nAPI worker RSS (MiB): steadyfit {', '.join(f'{r:.0f}' for r in ours_rss)}; "
        f"MLflow {', '.join(f'{r:.0f}' for r in theirs_rss)}\n"
    )
    print("| target | measured | holds |")
    print("| --- | ---: | --- |")
    for target, measured, holds in checks:
        print(f"| {target} | {measured} | {'yes' if holds else 'no'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="How long each measurement runs (default 5).")
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
        ours = Steadyfit(f"http://127.0.0.1:{port}", database_url, headers)
        stack.callback(ours.database.dispose)
        theirs = Mlflow(f"http://127.0.0.1:{theirs_port}")
        ours.fill()
        theirs.fill()
        print(f"{EPOCHS} epochs x {len(METRICS)} metrics in one job/run; {args.seconds:g} s per measurement\n")
        rows = measure(ours, theirs, args.seconds)
        print_table(rows)
        print_targets(rows, worker_rss(ours_pid), worker_rss(theirs_pid))


if __name__ == "__main__":
    main()
