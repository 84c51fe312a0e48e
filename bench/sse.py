"""Server-sent-event fan-out: how soon an epoch reaches 200 subscribers of one job's event stream.

One `steadyfit api` process in production mode, on a fresh PostgreSQL database (127.0.0.1:5432, created
and dropped here) and Redis (127.0.0.1:6379, a queue name of its own), with API keys on. A job is submitted
over HTTP; this process then plays its worker: it claims the job in the database with a long lease and,
every `--interval` seconds, records an epoch of 6 metrics with `repository.record_epoch` (as
workers/runner.py does) and publishes the change on Redis (`ChangePublisher.job_changed`); at the end it
finishes the job (succeeded), so the streams end. Meanwhile `--subscribers` aiohttp connections read
`GET /v1/jobs/{id}/events`. For every (subscriber, epoch) pair the delay is from the epoch's commit
returning to the subscriber reading the end of that epoch's `event: epoch` message; both instants come
from this process's monotonic clock. Also the API process's resident memory before the subscribers
connect, once they all are connected, at its peak while epochs stream, and after they have gone.
Everything it starts it stops, even on failure.
Run: `python bench/sse.py` (needs `pip install -e '.[bench]'`, PostgreSQL and Redis on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
from api import MIB, OWNER, SPEC, epoch_metrics, server, worker_rss
from harness import REDIS_URL, api_key_headers, free_port, migrated_env, postgres_database, redis_queue
from sqlalchemy import text

from core.db.changes import ChangePublisher
from core.db.engine import Database
from core.jobs import repository
from core.settings import Settings
from core.states import JobStatus, StopReason

TARGET_P99 = 0.250


def rss_mib(pid: int) -> float:
    """Resident memory (MiB) of the API: the process itself and any uvicorn workers it spawned."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    own = next(int(line.split()[1]) * 1024 / MIB for line in status if line.startswith("VmRSS:"))
    return own + sum(worker_rss(pid))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the API process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_counters(database: Database) -> tuple[float, float, float]:
    """This database's transactions, sessions opened and milliseconds spent running statements, so far
    (pg_stat_database; its figures may lag by up to a second)."""
    with database.engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT xact_commit + xact_rollback, sessions, active_time FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
    return float(row[0]), float(row[1]), float(row[2])


@dataclass
class Subscribers:
    """What the subscribers saw: per subscriber, epoch → when its event was read."""

    count: int
    received: list[dict[int, float]] = field(init=False)
    connected: int = 0
    ended: int = 0
    all_connected: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.received = [{} for _ in range(self.count)]

    async def read(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str], n: int) -> None:
        async with session.get(url, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"subscriber {n}: GET {url}: {response.status} {await response.text()}")
            seen = self.received[n]
            first = True
            event_id: int | None = None
            event = ""
            while line := await response.content.readline():
                if first:  # the stream's opening status event: this subscriber is in
                    first = False
                    self.connected += 1
                    if self.connected == self.count:
                        self.all_connected.set()
                text = line.decode().rstrip("\r\n")
                if text.startswith("id:"):
                    event_id = int(text[3:].strip())
                elif text.startswith("event:"):
                    event = text[6:].strip()
                elif not text:  # the end of a message
                    if event == "epoch" and event_id is not None:
                        seen.setdefault(event_id, time.monotonic())
                    event_id, event = None, ""
            self.ended += 1


class Worker:
    """The job's worker, played here: claims the job, records epochs on a schedule, then finishes it."""

    def __init__(self, database_url: str, queue_name: str, job_id: str) -> None:
        self.database = Database(database_url)
        self.changes = ChangePublisher(Settings(database_url=database_url, broker_url=REDIS_URL, queue_name=queue_name))
        self.job_id = job_id
        self.committed: dict[int, float] = {}
        self.stopping = threading.Event()  # set when the run is abandoned: stop writing
        with self.database.session() as session:
            if repository.claim(session, job_id, OWNER, lease_seconds=3600, max_attempts=10) is None:
                raise RuntimeError(f"could not claim job {job_id}")
        self.changes.job_changed(job_id)

    def run(self, epochs: int, interval: float) -> None:
        start = time.monotonic()
        for epoch in range(1, epochs + 1):
            if self.stopping.wait(max(0.0, start + epoch * interval - time.monotonic())):
                return
            values = epoch_metrics(epoch)
            with self.database.session() as session:
                if not repository.record_epoch(session, self.job_id, OWNER, epoch, values, epoch, values):
                    raise RuntimeError(f"lost the lease of {self.job_id}")
            self.committed[epoch] = time.monotonic()  # the commit has returned
            self.changes.job_changed(self.job_id)
        if self.stopping.wait(interval):
            return
        with self.database.session() as session:
            repository.finish(
                session,
                self.job_id,
                OWNER,
                JobStatus.SUCCEEDED,
                stop_reason=StopReason.MAX_EPOCHS,
                epochs_completed=epochs,
            )
        self.changes.job_changed(self.job_id)

    def close(self) -> None:
        self.database.dispose()
        if self.changes.client is not None:
            self.changes.client.close()


@dataclass
class Result:
    delays: list[float]
    expected: int
    spreads: list[float]  # per epoch: last subscriber's receipt minus the first's
    rss_connected: float
    rss_peak: float
    api_cpu: float  # the API's CPU seconds per wall second while epochs streamed
    own_cpu: float  # this process's (subscribers and writer), likewise
    transactions: float  # PostgreSQL transactions in this database while epochs streamed
    sessions: float  # connections opened to it, likewise
    postgres_active: float  # its backends' time running statements, per wall second


async def run(
    base: str, headers: dict[str, str], worker: Worker, pid: int, subscribers: int, epochs: int, interval: float
) -> Result:
    subs = Subscribers(subscribers)
    url = f"{base}/v1/jobs/{worker.job_id}/events"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        readers = [asyncio.create_task(subs.read(session, url, headers, n)) for n in range(subscribers)]
        try:
            waiting = asyncio.create_task(subs.all_connected.wait())
            done, _ = await asyncio.wait([waiting, *readers], timeout=60, return_when=asyncio.FIRST_COMPLETED)
            if waiting not in done:
                waiting.cancel()
                for task in done:
                    task.result()  # a reader that has ended this early has failed: raise its error
                raise RuntimeError(f"only {subs.connected} of {subscribers} subscribers connected within 60 s")
            await asyncio.sleep(1.0)  # let the API settle after the connection burst
            rss_connected = rss_mib(pid)
            peak = [rss_connected]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.2):
                    peak.append(rss_mib(pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            pg_began = postgres_counters(worker.database)
            began, api_began, own_began = time.monotonic(), cpu_seconds(pid), time.process_time()
            try:
                await asyncio.to_thread(worker.run, epochs, interval)
                await asyncio.wait_for(asyncio.gather(*readers), timeout=60)
                wall = time.monotonic() - began
                api_cpu = (cpu_seconds(pid) - api_began) / wall
                own_cpu = (time.process_time() - own_began) / wall
                await asyncio.sleep(1.5)  # PostgreSQL publishes its counters about once a second
                transactions, sessions, active = (
                    b - a for a, b in zip(pg_began, postgres_counters(worker.database), strict=True)
                )
            finally:
                stop.set()
                sampler.join()
        finally:
            worker.stopping.set()
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    delays = [
        seen[epoch] - committed
        for seen in subs.received
        for epoch, committed in worker.committed.items()
        if epoch in seen
    ]
    spreads = []
    for epoch in worker.committed:
        times = [seen[epoch] for seen in subs.received if epoch in seen]
        if times:
            spreads.append(max(times) - min(times))
    return Result(
        delays,
        subscribers * epochs,
        spreads,
        rss_connected,
        max(peak),
        api_cpu,
        own_cpu,
        transactions,
        sessions,
        active / 1000 / wall,
    )


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(result: Result, rss_before: float, rss_after: float, subscribers: int, epochs: int, interval: float) -> None:
    delays = result.delays
    print(
        f"{subscribers} subscribers to one job's /events on one `steadyfit api` process; "
        f"{epochs} epochs x 6 metrics, one every {interval:g} s\n"
    )
    print("| measure | value |")
    print("| --- | ---: |")
    if delays:
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            print(f"| commit → event {name} (ms) | {ms(quantile(delays, q))} |")
        print(f"| commit → event max (ms) | {ms(max(delays))} |")
    if result.spreads:
        print(
            f"| per-epoch spread, first → last subscriber, p50 / max (ms) | "
            f"{ms(quantile(result.spreads, 0.5))} / {ms(max(result.spreads))} |"
        )
    print(f"| API process CPU while streaming (cores) | {result.api_cpu:.2f} |")
    print(f"| PostgreSQL transactions per (subscriber, epoch) | {result.transactions / max(1, result.expected):.2f} |")
    print(f"| PostgreSQL connections opened while streaming | {result.sessions:.0f} |")
    print(f"| PostgreSQL time running statements (backend-seconds per second) | {result.postgres_active:.2f} |")
    print(f"| bench process CPU (subscribers + writer) (cores) | {result.own_cpu:.2f} |")
    print(f"| epoch events received / expected | {len(delays)} / {result.expected} |")
    print(f"| API RSS before subscribers (MiB) | {rss_before:.0f} |")
    print(f"| API RSS with {subscribers} connected (MiB) | {result.rss_connected:.0f} |")
    print(f"| API RSS peak while streaming (MiB) | {result.rss_peak:.0f} |")
    print(f"| API RSS after they left (MiB) | {rss_after:.0f} |")
    complete = len(delays) == result.expected
    p99 = quantile(delays, 0.99) if delays else float("inf")
    print("\n| target | measured | holds |")
    print("| --- | ---: | --- |")
    print(
        f"| every epoch event reaches every subscriber | {len(delays)} / {result.expected} "
        f"| {'yes' if complete else 'no'} |"
    )
    print(
        f"| epoch end → event p99 < {TARGET_P99 * 1000:.0f} ms at {subscribers} subscribers | {ms(p99)} ms "
        f"| {'yes' if complete and p99 < TARGET_P99 else 'no'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=200, help="Concurrent event streams (default 200).")
    parser.add_argument("--epochs", type=int, default=40, help="Epochs the job records (default 40).")
    parser.add_argument("--interval", type=float, default=0.25, help="Seconds between epochs (default 0.25).")
    args = parser.parse_args()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="steadyfit-bench-")))
        database_url = stack.enter_context(postgres_database())
        queue_name = stack.enter_context(redis_queue())
        env = migrated_env(database_url, queue_name, tmp / "steadyfit")
        headers = api_key_headers(database_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        pid = stack.enter_context(
            server(
                [sys.executable, "-m", "steadyfit.cli", "api", "--port", str(port), "--workers", "1"],
                env,
                tmp / "api.log",
                f"{base}/healthz",
            )
        )
        response = httpx.post(f"{base}/v1/jobs", json=SPEC, headers=headers, timeout=10)
        response.raise_for_status()
        worker = Worker(database_url, queue_name, response.json()["id"])
        stack.callback(worker.close)
        rss_before = rss_mib(pid)
        result = asyncio.run(run(base, headers, worker, pid, args.subscribers, args.epochs, args.interval))
        time.sleep(1.0)
        report(result, rss_before, rss_mib(pid), args.subscribers, args.epochs, args.interval)


if __name__ == "__main__":
    main()
