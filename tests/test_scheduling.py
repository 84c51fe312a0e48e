"""The scheduler with real workers, through HTTP: priorities, fair share between owners, the queue's positions,
and exactly-once claims while a worker is killed."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.db.engine import Database
from core.settings import Settings
from core.tenants import limits
from tests.fixtures import Process, bearer, create_key, embedded_serve, tiny_spec, wait_for, wait_for_job

StartWorker = Callable[[str], Process]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Short leases, so that a killed worker's job is taken over within seconds."""
    return settings.model_copy(update={"lease_seconds": 2.0, "reconcile_seconds": 0.5})


def quick_spec(epochs: int = 1) -> dict[str, Any]:
    return tiny_spec(training={"epochs": epochs, "batch_size": 16, "seed": 1})


def submit(http: httpx.Client, headers: dict[str, str] | None = None, **changes: Any) -> str:
    response = http.post("/v1/jobs", json={**quick_spec(), **changes}, headers=headers or {})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def all_jobs(http: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = http.get("/v1/jobs", params={"limit": 200}).json()["items"]
    return items


@contextmanager
def client_of(http: httpx.Client, headers: dict[str, str]) -> Iterator[httpx.Client]:
    """Another caller of the API server that `http` calls."""
    with httpx.Client(base_url=http.base_url, timeout=10, headers=headers) as other:
        yield other


def when(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def test_a_newcomer_starts_within_two_completions_behind_another_owners_long_queue(
    api_server: httpx.Client, start_worker: StartWorker, database_url: str
) -> None:
    # Long enough that the two workers are busy training when bob submits.
    spec = quick_spec(epochs=100)
    alice_ids = [submit(api_server, **spec) for _ in range(40)]
    start_worker("first"), start_worker("second")
    wait_for(
        lambda: sum(job["started_at"] is not None for job in all_jobs(api_server)) >= 2, 120, "two of alice's jobs"
    )

    with client_of(api_server, bearer(create_key(database_url, "bob"))) as bob:
        bob_id = submit(bob, **spec)
        submitted = datetime.now(UTC)  # the job is committed: the next claim can see it
        bobs = wait_for_job(bob, bob_id)

    assert bobs["status"] == "succeeded"
    alices = [job for job in all_jobs(api_server) if job["id"] in alice_ids]
    started = when(bobs["started_at"])
    ended_meanwhile = [job for job in alices if job["finished_at"] and submitted < when(job["finished_at"]) <= started]
    started_after = [job for job in alices if job["started_at"] is None or when(job["started_at"]) > started]
    assert len(ended_meanwhile) <= 2  # bob took one of the first two workers to come free
    assert len(started_after) >= 20  # ahead of most of alice's queue, which came first


def test_on_the_embedded_server_a_newcomer_starts_within_two_completions(tmp_path: Path) -> None:
    """`steadyfit serve`'s one worker claims a job only once the last has ended, so no job runs at a claim: the
    jobs alice started within the last minute are what put bob's job ahead of her queue."""
    data = tmp_path / "embedded"
    with embedded_serve(data, tmp_path / "serve.log", "--auth", "keys") as (_, base_url):
        url = Settings(data_dir=data).resolved_database_url
        alice, bob = (
            httpx.Client(base_url=base_url, timeout=10, headers=bearer(create_key(url, o))) for o in ("alice", "bob")
        )
        with alice, bob:
            alice_ids = [submit(alice, **quick_spec(epochs=5)) for _ in range(12)]
            wait_for(lambda: any(job["started_at"] for job in all_jobs(alice)), 120, "alice's first job")
            bob_id = submit(bob, **quick_spec(epochs=5))
            submitted = datetime.now(UTC)
            bobs = wait_for_job(bob, bob_id)
            alices = [job for job in all_jobs(alice) if job["id"] in alice_ids]

    started = when(bobs["started_at"])
    ended_meanwhile = [job for job in alices if job["finished_at"] and submitted < when(job["finished_at"]) <= started]
    assert bobs["status"] == "succeeded" and len(ended_meanwhile) <= 2
    assert sum(job["started_at"] is None or when(job["started_at"]) > started for job in alices) >= 6


def test_a_high_priority_job_submitted_last_starts_first_and_positions_count_down(
    api_server: httpx.Client, start_worker: StartWorker, database_url: str, settings: Settings
) -> None:
    database = Database(database_url, pooled=False)
    with database.session() as session:
        limits.set_overrides(session, "bob", {"max_priority": "high"})
    database.dispose()
    carol = bearer(create_key(database_url, "carol"))
    admin = client_of(api_server, bearer(create_key(database_url, "root", admin=True)))

    over = api_server.post("/v1/jobs", json={**quick_spec(), "priority": "high"})
    alice_ids = [submit(api_server) for _ in range(3)]
    urgent = submit(api_server, bearer(create_key(database_url, "bob")), priority="high")
    with admin as root:
        positions = {job_id: root.get(f"/v1/jobs/{job_id}").json()["queue_position"] for job_id in alice_ids}
        urgent_read = root.get(f"/v1/jobs/{urgent}").json()
        as_alice, as_admin = api_server.get("/v1/queue").json(), root.get("/v1/queue").json()
        as_carol = api_server.get("/v1/queue", headers=carol).json()  # who has no jobs

        last = alice_ids[-1]
        seen: list[int | None] = []

        def last_started() -> bool:
            job = root.get(f"/v1/jobs/{last}").json()
            if not seen or seen[-1] != job["queue_position"]:
                seen.append(job["queue_position"])
            return job["status"] != "queued"

        start_worker("only")
        wait_for(last_started, 120, "alice's last job to start")
        ended = [wait_for_job(root, job_id) for job_id in [urgent, *alice_ids]]

    assert over.status_code == 422
    assert over.json()["errors"][0]["field"] == "priority"
    assert over.json()["detail"] == "priority: `high` is over your limit `max_priority` of `normal`"
    assert (urgent_read["priority"], urgent_read["queue_position"]) == ("high", 1)
    assert urgent_read["estimated_start"] is None  # no job has succeeded yet to estimate from
    assert list(positions.values()) == [2, 3, 4]
    assert as_alice == {"owners": [{"owner": "alice", "queued": 3, "running": 0}], "queued": 4, "running": 0}
    assert as_carol == {"owners": [{"owner": "carol", "queued": 0, "running": 0}], "queued": 4, "running": 0}
    assert as_admin["owners"] == [
        {"owner": "alice", "queued": 3, "running": 0},
        {"owner": "bob", "queued": 1, "running": 0},
    ]

    waiting = [position for position in seen if position is not None]
    assert seen[0] == 4 and seen[-1] is None and len(waiting) == len(seen) - 1
    assert waiting == sorted(waiting, reverse=True)  # it only ever moves up
    by_start = sorted(ended, key=lambda job: when(job["started_at"]))
    assert [job["id"] for job in by_start] == [urgent, *alice_ids]


def claims(log: str) -> list[str]:
    return re.findall(r"job (\S+) claimed by", log)


def test_nothing_runs_twice_under_two_workers_when_one_is_killed(
    api_server: httpx.Client, start_worker: StartWorker
) -> None:
    workers = [start_worker("first"), start_worker("second")]
    job_ids = [submit(api_server, training={"epochs": 30, "batch_size": 16, "seed": 1}) for _ in range(8)]
    wait_for(lambda: len(claims(workers[0].log())) >= 1, 120, "the first worker's first job")

    workers[0].stop(signal.SIGKILL)  # kill -9 the worker and the child training its job
    jobs = [wait_for_job(api_server, job_id) for job_id in job_ids]

    assert [job["status"] for job in jobs] == ["succeeded"] * len(jobs)
    claimed = claims(workers[0].log()) + claims(workers[1].log())
    assert sorted(claimed) == sorted(job["id"] for job in jobs for _ in range(job["attempts"]))
    assert sum(job["attempts"] for job in jobs) <= len(jobs) + 1  # only the killed worker's job ran again
    for job in jobs:
        epochs = api_server.get(f"/v1/jobs/{job['id']}/metrics").json()["items"]
        assert [epoch["epoch"] for epoch in epochs] == list(range(1, job["epochs_completed"] + 1))
