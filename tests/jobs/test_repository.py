"""The job state machine's SQL on real PostgreSQL: claims, leases and epoch writes cannot double up."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.engine import Database
from core.db.models import EpochMetrics, Job
from core.jobs import repository
from core.states import JobStatus


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def new_job(database: Database) -> str:
    job_id = str(uuid.uuid4())
    with database.session() as session:
        repository.add(session, Job(id=job_id, status="queued", task="classification", spec={}))
    return job_id


def test_only_one_worker_claims_a_job(database: Database) -> None:
    job_id = new_job(database)
    with database.session() as session:
        first = repository.claim(session, job_id, "worker-a", lease_seconds=30, max_attempts=3)
    with database.session() as session:
        second = repository.claim(session, job_id, "worker-b", lease_seconds=30, max_attempts=3)

    assert first is not None and first.status == "running" and first.attempts == 1
    assert second is None


def test_an_expired_lease_can_be_claimed_again_and_the_old_owner_is_locked_out(database: Database) -> None:
    job_id = new_job(database)
    with database.session() as session:
        repository.claim(session, job_id, "worker-a", lease_seconds=-1, max_attempts=3)  # already expired
    with database.session() as session:
        taken = repository.claim(session, job_id, "worker-b", lease_seconds=30, max_attempts=3)
    with database.session() as session:
        stale_write = repository.record_epoch(session, job_id, "worker-a", 1, {"val_loss": 1.0}, None, None)
        stale_renewal = repository.renew_lease(session, job_id, "worker-a", 30)
        stale_finish = repository.finish(session, job_id, "worker-a", JobStatus.SUCCEEDED)

    assert taken is not None and taken.attempts == 2 and taken.worker_id == "worker-b"
    assert (stale_write, stale_renewal, stale_finish) == (False, None, False)


def test_an_epoch_written_twice_is_stored_once(database: Database) -> None:
    job_id = new_job(database)
    with database.session() as session:
        repository.claim(session, job_id, "w", lease_seconds=30, max_attempts=3)
    for _ in range(2):
        with database.session() as session:
            assert repository.record_epoch(session, job_id, "w", 1, {"val_loss": 0.5}, 1, {"val_loss": 0.5})

    with database.session() as session:
        rows = session.scalar(select(func.count()).select_from(EpochMetrics).where(EpochMetrics.job_id == job_id))
        job = repository.get(session, job_id)
    assert rows == 1
    assert job is not None and (job.epochs_completed, job.best_epoch) == (1, 1)


def test_an_epoch_sets_the_progress_and_keeps_the_best_until_a_better_one(database: Database) -> None:
    job_id = new_job(database)
    with database.session() as session:
        repository.claim(session, job_id, "w", lease_seconds=30, max_attempts=3)

    def write(session_of: Callable[[], AbstractContextManager[Session]], epoch: int, loss: float, best: bool) -> None:
        metrics = {"val_loss": loss}
        with session_of() as session:
            assert repository.record_epoch(
                session, job_id, "w", epoch, metrics, epoch if best else None, metrics if best else None
            )

    write(database.single_statement_session, 1, 0.5, best=True)  # as a worker writes
    write(database.single_statement_session, 2, 0.7, best=False)
    write(database.session, 3, 0.4, best=True)  # in a transaction
    write(database.session, 4, 0.6, best=False)

    with database.session() as session:
        job = repository.get(session, job_id)
        stored = repository.epochs_after(session, job_id, 0, None)
    assert job is not None
    assert (job.epochs_completed, job.best_epoch, job.best_metrics) == (4, 3, {"val_loss": 0.4})
    assert (job.owner, job.worker_id, job.status) == ("local", "w", "running")  # nothing else was set
    assert [(row["epoch"], row["val_loss"]) for row in stored] == [(1, 0.5), (2, 0.7), (3, 0.4), (4, 0.6)]


def test_a_cancel_request_reaches_the_worker_through_its_lease_renewal(database: Database) -> None:
    job_id = new_job(database)
    with database.session() as session:
        repository.claim(session, job_id, "w", lease_seconds=30, max_attempts=3)
        assert repository.renew_lease(session, job_id, "w", 30) is False
    with database.session() as session:
        assert not repository.cancel_queued(session, job_id)
        assert repository.request_cancel(session, job_id)
    with database.session() as session:
        assert repository.renew_lease(session, job_id, "w", 30) is True
