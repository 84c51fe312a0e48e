"""What the scheduler's claim costs against the claim of a named job, and what a queued job's position costs,
as the queue grows.

On a fresh PostgreSQL database (127.0.0.1:5432, created and dropped here), for each queue size: that many
queued jobs spread over `--owners` owners (of three priorities, one in ten `high`, and weights 1 and 2),
and 20 running jobs. Each measured call runs in its own transaction, rolled back, so every call sees the
same queue:
1. by id: `repository.claim` of one queued job (how a worker claimed before the scheduler);
2. scheduler: `scheduler.claim_next`, which picks the first job by priority, fair share and age;
3. position: `scheduler.queue_position` of the youngest queued job (what GET /v1/jobs/{id} adds for a
   queued job).
Prints the median and 90th percentile of each, in milliseconds, and the scheduler's median over the
claim by id's. Run: `python bench/claims.py`.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from harness import postgres_database
from sqlalchemy import insert
from sqlalchemy.orm import Session

from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job, OwnerLimits
from core.jobs import repository, scheduler
from core.states import JobStatus, Priority

RUNNING = 20
PRIORITIES = [Priority.HIGH] + [Priority.NORMAL] * 6 + [Priority.LOW] * 3  # one in ten high


def fill(database: Database, queued: int, owners: int) -> str:
    """`queued` queued jobs and RUNNING running ones; returns the youngest queued job's id."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "owner": f"owner-{i % owners}",
            "status": JobStatus.QUEUED,
            "priority": PRIORITIES[i % len(PRIORITIES)],
            "task": "classification",
            "spec": {},
            "created_at": start + timedelta(seconds=i),
            "attempts": 0,
        }
        for i in range(queued)
    ]
    lease = datetime.now(UTC) + timedelta(hours=1)
    rows += [
        {**row, "id": str(uuid.uuid4()), "status": JobStatus.RUNNING, "worker_id": "w", "lease_expires_at": lease}
        for row in rows[:RUNNING]
    ]
    with database.session() as session:
        session.execute(insert(Job), rows)
        session.execute(insert(OwnerLimits), [{"owner": f"owner-{i}", "weight": 1.0 + i % 2} for i in range(owners)])
    return str(rows[queued - 1]["id"])


def timed(database: Database, call: Callable[[Session], object], repeats: int) -> list[float]:
    """Milliseconds of each call, each in a transaction of its own that is rolled back."""
    times = []
    for _ in range(repeats):
        with database.engine.connect() as connection, Session(bind=connection) as session:
            begun = time.perf_counter()
            assert call(session) is not None
            times.append((time.perf_counter() - begun) * 1000)
            session.rollback()
    return times


def percentiles(times: list[float]) -> tuple[float, float]:
    deciles = statistics.quantiles(times, n=10)
    return statistics.median(times), deciles[8]


def measure(queued: int, owners: int, repeats: int) -> dict[str, tuple[float, float]]:
    with postgres_database() as url:
        upgrade(url)
        database = Database(url)
        try:
            youngest = fill(database, queued, owners)
            return {
                "by id": percentiles(timed(database, lambda s: repository.claim(s, youngest, "w", 60, 3), repeats)),
                "scheduler": percentiles(timed(database, lambda s: scheduler.claim_next(s, "w", 60, 3), repeats)),
                "position": percentiles(timed(database, lambda s: scheduler.queue_position(s, youngest), repeats)),
            }
        finally:
            database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--owners", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    print(
        f"{'queued':>7} | {'by id p50/p90':>14} | {'scheduler p50/p90':>18} | {'x by id':>7} | {'position p50/p90':>17}"
    )
    for size in args.sizes:
        found = measure(size, args.owners, args.repeats)
        (by_id, by_id_90), (picked, picked_90), (place, place_90) = (
            found["by id"],
            found["scheduler"],
            found["position"],
        )
        print(
            f"{size:>7} | {by_id:>6.2f} / {by_id_90:>5.2f} | {picked:>8.2f} / {picked_90:>7.2f} |"
            f" {picked / by_id:>7.1f} | {place:>7.2f} / {place_90:>7.2f}"
        )


if __name__ == "__main__":
    main()
