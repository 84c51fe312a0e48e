"""The reconciler on real PostgreSQL and Redis: lost messages are sent again, live ones are left alone."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from core.db.engine import Database
from core.db.models import Job
from core.jobs import repository
from core.queue import TaskQueue
from core.settings import Settings
from tests.fixtures import REDIS_URL
from workers.reconciler import Reconciler

GRACE = 0.2  # seconds after its last send before a job's message may be presumed lost


@pytest.fixture
def reconciler(settings: Settings) -> Iterator[Reconciler]:
    settings = settings.model_copy(update={"lease_seconds": GRACE, "max_attempts": 2})
    database, queue = Database(settings.resolved_database_url), TaskQueue(settings)
    yield Reconciler(database, queue, settings)
    queue.close()
    database.dispose()


def add_job(database: Database, status: str = "queued", attempts: int = 0) -> str:
    job_id = str(uuid.uuid4())
    with database.session() as session:
        repository.add(session, Job(id=job_id, status=status, task="classification", spec={}, attempts=attempts))
    return job_id


def queued_messages(settings: Settings) -> int:
    return int(redis.Redis.from_url(REDIS_URL).llen(settings.queue_name))


def test_a_queued_job_is_sent_again_only_once_the_broker_has_lost_its_queue(
    reconciler: Reconciler, settings: Settings
) -> None:
    job_id = add_job(reconciler.database)
    reconciler.queue.send_train(job_id)
    time.sleep(2 * GRACE)

    while_in_queue = reconciler.run_once()
    redis.Redis.from_url(REDIS_URL).delete(settings.queue_name)  # Redis restarted without persistence
    after_loss = reconciler.run_once()
    right_after = reconciler.run_once()

    assert while_in_queue == []
    assert after_loss == [job_id]
    assert queued_messages(settings) == 1
    assert right_after == []  # sent moments ago: not again until the grace period passes


def test_a_just_submitted_job_is_not_sent_twice(reconciler: Reconciler, settings: Settings) -> None:
    add_job(reconciler.database)  # committed, its message not yet in the queue
    assert reconciler.run_once() == []


def test_a_job_whose_worker_died_is_sent_again_and_a_live_one_is_not(reconciler: Reconciler) -> None:
    dead, alive = add_job(reconciler.database), add_job(reconciler.database)
    with reconciler.database.session() as session:
        repository.claim(session, dead, "dead-worker", lease_seconds=-1, max_attempts=2)
        repository.claim(session, alive, "live-worker", lease_seconds=60, max_attempts=2)
    time.sleep(2 * GRACE)
    reconciler.queue.send_train("keeps-the-queue-non-empty")

    assert reconciler.run_once() == [dead]


def test_a_job_that_keeps_losing_its_worker_fails_after_max_attempts(reconciler: Reconciler) -> None:
    job_id = add_job(reconciler.database)
    for attempt in range(2):
        with reconciler.database.session() as session:
            assert repository.claim(session, job_id, f"worker-{attempt}", lease_seconds=-1, max_attempts=2)

    with reconciler.database.session() as session:
        refused = repository.claim(session, job_id, "worker-3", lease_seconds=60, max_attempts=2)
    reconciler.run_once()
    with reconciler.database.session() as session:
        job = repository.get(session, job_id)

    assert refused is None
    assert job is not None and job.status == "failed"
    assert job.error == "the worker stopped 2 times while training this job; giving up"
