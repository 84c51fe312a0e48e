"""Load: 300 small jobs submitted at once to two workers all finish, each trained exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from core.db.engine import Database
from core.db.models import EpochMetrics, Job
from core.settings import Settings
from tests.fixtures import Process, settings_env, tiny_spec, wait_for

JOBS = 300
EPOCHS = 2


@pytest.fixture
def two_workers(settings: Settings, tmp_path: Path) -> Iterator[list[Process]]:
    env = settings_env(settings)
    workers = [Process(["worker", "--concurrency", "1"], env, tmp_path / f"worker-{i}.log") for i in range(2)]
    yield workers
    for worker in workers:
        worker.end()


def test_300_concurrent_jobs_on_two_workers_each_train_exactly_once(
    api_server: httpx.Client, two_workers: list[Process], settings: Settings
) -> None:
    spec = tiny_spec(training={"epochs": EPOCHS, "batch_size": 32, "seed": 1})
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: api_server.post("/v1/jobs", json=spec), range(JOBS)))
    assert all(r.status_code == 202 for r in responses)

    database = Database(settings.resolved_database_url)
    try:

        def all_done() -> bool:
            with database.session() as session:
                return session.scalar(select(func.count()).where(Job.status.in_(["queued", "running"]))) == 0

        wait_for(all_done, 600, f"{JOBS} jobs to finish", interval=1.0)
        minutes = (time.monotonic() - started) / 60
        with database.session() as session:
            outcomes = session.execute(
                select(Job.status, Job.attempts, func.count()).group_by(Job.status, Job.attempts)
            )
            epoch_rows = session.scalar(select(func.count()).select_from(EpochMetrics))
    finally:
        database.dispose()

    print(f"\n{JOBS} jobs in {minutes * 60:.1f} s: {JOBS / minutes:.0f} jobs per minute on two workers")
    assert [tuple(row) for row in outcomes] == [("succeeded", 1, JOBS)]  # every job once, none retried
    assert epoch_rows == JOBS * EPOCHS  # no epoch lost or written twice
