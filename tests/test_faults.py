"""Fault injection with real processes: a worker killed mid-epoch, a broker that forgot its queue.

Every job must still reach a terminal state, trained once to the end, with no epoch lost or repeated.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from core.db.migrate import upgrade
from core.settings import Settings
from tests.fixtures import (
    DIGITS_SPEC,
    REDIS_URL,
    PrivatePostgres,
    Process,
    bearer,
    create_key,
    free_port,
    settings_env,
    wait_for_job,
    wait_until_healthy,
)

TIMING = {"epoch_seconds", "samples_per_second"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Short leases so a dead worker's job is taken over within seconds."""
    return settings.model_copy(update={"lease_seconds": 2.0, "reconcile_seconds": 0.5})


def without_timing(epochs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in epoch.items() if k not in TIMING} for epoch in epochs]


def run_to_the_end(http: httpx.Client, spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    job_id = http.post("/v1/jobs", json=spec).json()["id"]
    job = wait_for_job(http, job_id)
    return job, http.get(f"/v1/jobs/{job_id}/metrics").json()["items"]


def test_a_worker_killed_mid_job_is_replaced_and_the_job_ends_as_if_undisturbed(
    api_server: httpx.Client, start_worker: Any
) -> None:
    first = start_worker("first")
    job_id = api_server.post("/v1/jobs", json=DIGITS_SPEC).json()["id"]
    wait_for_job(api_server, job_id, epochs=3)

    first.stop(signal.SIGKILL)  # kill -9 the worker and the child training the job
    second = start_worker("second")
    resumed = wait_for_job(api_server, job_id)
    resumed_epochs = api_server.get(f"/v1/jobs/{job_id}/metrics").json()["items"]
    undisturbed, undisturbed_epochs = run_to_the_end(api_server, DIGITS_SPEC)

    assert resumed["status"] == "succeeded", resumed
    assert resumed["attempts"] == 2 and undisturbed["attempts"] == 1
    assert f"job {job_id} resumes after epoch" in second.log()  # from the checkpoint, not from scratch
    assert [e["epoch"] for e in resumed_epochs] == list(range(1, resumed["epochs_completed"] + 1))
    assert without_timing(resumed_epochs) == without_timing(undisturbed_epochs)
    for field in ("best_epoch", "epochs_completed", "stop_reason", "test_metrics"):
        assert resumed[field] == undisturbed[field], field


def test_jobs_survive_a_broker_that_lost_its_queue(
    api_server: httpx.Client, start_worker: Any, settings: Settings
) -> None:
    spec = {**DIGITS_SPEC, "training": {"epochs": 3, "batch_size": 64, "seed": 1}}
    job_ids = [api_server.post("/v1/jobs", json=spec).json()["id"] for _ in range(3)]
    broker = redis.Redis.from_url(REDIS_URL)
    assert broker.llen(settings.queue_name) == 3
    broker.delete(settings.queue_name)  # what a Redis restart without persistence does to the queue

    start_worker("after-the-loss")
    jobs = [wait_for_job(api_server, job_id) for job_id in job_ids]

    assert [(job["status"], job["epochs_completed"], job["attempts"]) for job in jobs] == [("succeeded", 3, 1)] * 3


def test_sigterm_hands_the_running_job_back_and_another_worker_finishes_it(
    api_server: httpx.Client, start_worker: Any
) -> None:
    spec = {**DIGITS_SPEC, "early_stopping": None, "training": {"epochs": 12, "batch_size": 64, "seed": 5}}
    first = start_worker("first")
    job_id = api_server.post("/v1/jobs", json=spec).json()["id"]
    wait_for_job(api_server, job_id, epochs=2)

    first.stop(signal.SIGTERM, group=False)  # what `docker stop` sends to the worker's main process
    handed_back = api_server.get(f"/v1/jobs/{job_id}").json()
    start_worker("second")
    finished = wait_for_job(api_server, job_id)
    epochs = api_server.get(f"/v1/jobs/{job_id}/metrics").json()["items"]
    undisturbed, undisturbed_epochs = run_to_the_end(api_server, spec)

    assert first.popen.returncode == 0, first.log()
    assert "handed back to the queue" in first.log()
    assert handed_back["status"] == "queued" and handed_back["epochs_completed"] >= 2
    assert finished["status"] == "succeeded" and finished["attempts"] == 2
    assert without_timing(epochs) == without_timing(undisturbed_epochs)
    assert finished["test_metrics"] == undisturbed["test_metrics"]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    yield server
    server.remove()


def test_a_database_restart_mid_job_loses_no_epoch_and_the_api_answers_503_meanwhile(
    private_postgres: PrivatePostgres, settings: Settings, tmp_path: Path
) -> None:
    upgrade(private_postgres.url)
    settings = settings.model_copy(update={"database_url": private_postgres.url, "lease_seconds": 30.0})
    env = settings_env(settings)
    spec = {**DIGITS_SPEC, "early_stopping": None, "training": {"epochs": 15, "batch_size": 32, "seed": 8}}
    port = free_port()
    api = Process(["api", "--port", str(port)], env, tmp_path / "api.log")
    worker = Process(["worker", "--concurrency", "1"], env, tmp_path / "worker.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", api)
        key = create_key(private_postgres.url, "alice")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=bearer(key)) as http:
            job_id = http.post("/v1/jobs", json=spec).json()["id"]
            wait_for_job(http, job_id, epochs=2)

            private_postgres.stop()
            during_get, during_health = http.get(f"/v1/jobs/{job_id}"), http.get("/healthz")
            time.sleep(3)  # the next epoch ends while the database is away: its write must wait, not vanish
            private_postgres.start()

            job = wait_for_job(http, job_id)
            epochs = http.get(f"/v1/jobs/{job_id}/metrics").json()["items"]
            undisturbed, undisturbed_epochs = run_to_the_end(http, spec)
    finally:
        api.stop()
        worker.end()

    assert during_get.status_code == 503
    assert during_get.headers["content-type"] == "application/problem+json"
    assert during_health.status_code == 503 and during_health.json()["database"] == "down"
    assert "database unavailable" in worker.log()
    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert [e["epoch"] for e in epochs] == list(range(1, 16))
    assert without_timing(epochs) == without_timing(undisturbed_epochs)
    assert job["test_metrics"] == undisturbed["test_metrics"]
