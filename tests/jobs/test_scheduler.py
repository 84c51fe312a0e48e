"""The scheduler's order (priority, fair share, age) on hand-worked rows, on PostgreSQL and on SQLite alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job, OwnerLimits
from core.jobs import repository, scheduler
from core.states import JobStatus, Priority

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "postgresql":
        url = request.getfixturevalue("database_url")
    else:
        url = f"sqlite:///{tmp_path / 'steadyfit.db'}"
        upgrade(url)
    db = Database(url)
    yield db
    db.dispose()


def add(
    database: Database,
    name: str,
    owner: str,
    minute: int,
    priority: Priority = Priority.NORMAL,
    status: JobStatus = JobStatus.QUEUED,
    lease: timedelta = timedelta(hours=1),
    attempts: int = 1,
) -> str:
    """A job named `name` of `owner`, submitted `minute` minutes after T0; a running one holds a lease."""
    with database.session() as session:
        running = status == JobStatus.RUNNING
        repository.add(
            session,
            Job(
                id=f"{name}-{uuid.uuid4()}"[:36],
                owner=owner,
                name=name,
                status=status,
                priority=priority,
                task="classification",
                spec={},
                created_at=T0 + timedelta(minutes=minute),
                worker_id="elsewhere" if running else None,
                lease_expires_at=datetime.now(UTC) + lease if running else None,
                attempts=attempts if running else 0,
            ),
        )
    return name


def weigh(database: Database, **weights: float) -> None:
    with database.session() as session:
        for owner, weight in weights.items():
            session.add(OwnerLimits(owner=owner, weight=weight))


def job_id(database: Database, name: str) -> str:
    with database.session() as session:
        return session.scalars(select(Job.id).where(Job.name == name)).one()


def claim_all(database: Database) -> list[str]:
    """Claim until nothing is left, no job ending meanwhile; the names of the jobs, in the order claimed."""
    claimed = []
    with database.session() as session:
        while (job := scheduler.claim_next(session, "w", lease_seconds=60, max_attempts=3)) is not None:
            claimed.append(job.name or "")
    return claimed


def test_priority_then_fair_share_by_weight_then_age(database: Database) -> None:
    # Running: alice 2 (weight 1), bob 2 (weight 2), carol none (weight unset: 1).
    weigh(database, alice=1.0, bob=2.0)
    for minute in range(2):
        add(database, "alice running", "alice", minute, status=JobStatus.RUNNING)
        add(database, "bob running", "bob", minute, status=JobStatus.RUNNING)
    for name, owner, minute, priority in [
        ("a1", "alice", 1, Priority.NORMAL),
        ("a2", "alice", 2, Priority.NORMAL),
        ("b1", "bob", 3, Priority.NORMAL),
        ("b2", "bob", 4, Priority.NORMAL),
        ("c1", "carol", 5, Priority.LOW),
        ("a3", "alice", 6, Priority.HIGH),
        ("c2", "carol", 7, Priority.NORMAL),
    ]:
        add(database, name, owner, minute, priority)

    # By hand: a3 first, the only high job; alice then runs 3. The normal jobs go by (running + taken before)
    # ÷ weight: carol's c2 at 0 ÷ 1; bob's b1 at 2 ÷ 2 and b2 at 3 ÷ 2; alice's a1 at 3 ÷ 1 and a2 at 4 ÷ 1.
    # The low job, c1, last.
    expected = ["a3", "c2", "b1", "b2", "a1", "a2", "c1"]
    with database.session() as session:
        order = [repository.get(session, queued).name for queued in scheduler.queue_order(session)]  # type: ignore[union-attr]
        positions = {name: scheduler.queue_position(session, job_id(database, name)) for name in expected}
    assert order == expected
    assert positions == {name: position for position, name in enumerate(expected, start=1)}
    assert claim_all(database) == expected  # each claim takes the job at position 1


def test_owners_with_equal_shares_take_turns_oldest_first(database: Database) -> None:
    for name, owner, minute in [("d1", "dave", 1), ("d2", "dave", 2), ("d3", "dave", 3), ("e1", "erin", 4)]:
        add(database, name, owner, minute)
    # d1 (both at 0, d1 the older); erin at 0 before dave at 1; d2 and d3, dave's alone.
    assert claim_all(database) == ["d1", "e1", "d2", "d3"]


@pytest.mark.parametrize(
    ("started", "expected"), [(timedelta(seconds=10), ["b1", "a1"]), (timedelta(minutes=2), ["a1", "b1"])]
)
def test_jobs_started_within_the_usage_window_count_as_use_though_none_runs(
    database: Database, started: timedelta, expected: list[str]
) -> None:
    """One worker that claims only once the last job has ended sees nobody running: alice's two jobs that
    started 10 s ago still count against her, so bob's newer job goes first; started 2 minutes ago (outside
    the 60 s window) they do not, and the older job goes first."""
    with database.session() as session:
        for _ in range(2):
            job = Job(id=str(uuid.uuid4()), owner="alice", status=JobStatus.SUCCEEDED, task="classification", spec={})
            job.created_at, job.started_at = T0, datetime.now(UTC) - started
            repository.add(session, job)
    add(database, "a1", "alice", 1)
    add(database, "b1", "bob", 2)
    with database.session() as session:
        assert scheduler.queue_position(session, job_id(database, expected[0])) == 1
    assert claim_all(database) == expected


def test_a_job_whose_worker_was_lost_is_claimed_and_a_live_or_exhausted_one_is_not(database: Database) -> None:
    add(database, "live", "alice", 1, status=JobStatus.RUNNING)
    add(database, "lost", "alice", 2, status=JobStatus.RUNNING, lease=timedelta(seconds=-1))
    add(database, "exhausted", "bob", 3, status=JobStatus.RUNNING, lease=timedelta(seconds=-1), attempts=3)

    assert claim_all(database) == ["lost"]
    with database.session() as session:
        assert scheduler.queue_position(session, job_id(database, "lost")) is None  # running, not queued


def test_the_estimated_start_follows_recent_run_times_and_running_jobs(database: Database) -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    with database.session() as session:
        for minute, seconds in [(1, 10), (2, 20)]:
            started = now - timedelta(hours=1)
            job = Job(id=str(uuid.uuid4()), status=JobStatus.SUCCEEDED, task="classification", spec={})
            job.created_at, job.started_at = T0 + timedelta(minutes=minute), started
            job.finished_at = started + timedelta(seconds=seconds)
            repository.add(session, job)
    for minute in range(3):
        add(database, "running", "alice", minute, status=JobStatus.RUNNING)

    with database.session() as session:
        # Mean run 15 s; 3 running jobs end one every 5 s; position 2 starts after 2 of them: 10 s.
        assert scheduler.estimated_start(session, 2, now) == now + timedelta(seconds=10)


def test_there_is_no_estimate_before_any_job_has_succeeded(database: Database) -> None:
    with database.session() as session:
        assert scheduler.estimated_start(session, 1) is None
