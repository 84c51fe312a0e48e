"""`Idempotency-Key` on POST /v1/jobs, /v1/datasets and /v1/sweeps, on a real PostgreSQL database and Redis."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import redis
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.fixtures import REDIS_URL, sweep_body, table_csv, tiny_spec


def queued_messages(settings: Settings) -> int:
    return int(redis.Redis.from_url(REDIS_URL).llen(settings.queue_name))


def post_job(client: TestClient, spec: dict[str, Any], key: str) -> httpx.Response:
    return client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": key})


def test_a_retried_job_submission_returns_the_first_job_and_queues_it_once(
    client: TestClient, settings: Settings
) -> None:
    first = post_job(client, tiny_spec(), "retry-1")
    again = post_job(client, tiny_spec(), "retry-1")

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(client.get("/v1/jobs").json()["items"]) == 1
    assert queued_messages(settings) == 1


def test_the_same_key_with_another_body_is_a_409_naming_the_header(client: TestClient, settings: Settings) -> None:
    post_job(client, tiny_spec(), "retry-2")
    response = post_job(client, tiny_spec(name="something else"), "retry-2")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in response.json()["detail"]
    assert queued_messages(settings) == 1


def test_other_keys_and_no_key_create_new_jobs(client: TestClient) -> None:
    ids = {
        post_job(client, tiny_spec(), "a").json()["id"],
        post_job(client, tiny_spec(), "b").json()["id"],
        client.post("/v1/jobs", json=tiny_spec()).json()["id"],
        client.post("/v1/jobs", json=tiny_spec()).json()["id"],
    }
    assert len(ids) == 4


def test_a_failed_request_leaves_the_key_free_for_its_retry(client: TestClient) -> None:
    bad = post_job(client, tiny_spec(loss="mse"), "fix-and-retry")
    assert bad.status_code == 422
    assert post_job(client, tiny_spec(), "fix-and-retry").status_code == 202


def test_a_malformed_key_is_a_422_naming_the_header(client: TestClient) -> None:
    response = post_job(client, tiny_spec(), "x" * 201)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["Idempotency-Key"]


def test_an_expired_key_is_a_new_request(client_with: Callable[..., TestClient]) -> None:
    with client_with(idempotency_key_hours=1e-12) as client:
        first = post_job(client, tiny_spec(), "expires")
        second = post_job(client, tiny_spec(name="another"), "expires")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]


def test_concurrent_identical_requests_create_one_job(client: TestClient, settings: Settings) -> None:
    start = threading.Barrier(8)
    responses: list[httpx.Response] = []

    def submit() -> None:
        start.wait()
        responses.append(post_job(client, tiny_spec(), "race"))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [202] * 8
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(client.get("/v1/jobs").json()["items"]) == 1
    assert queued_messages(settings) == 1


def upload(client: TestClient, key: str, data: bytes) -> httpx.Response:
    return client.post(
        "/v1/datasets",
        files={"file": ("table.csv", data, "text/csv")},
        data={"target": "label", "task": "classification"},
        headers={"Idempotency-Key": key},
    )


def test_a_retried_upload_returns_the_first_data_set(client: TestClient) -> None:
    first = upload(client, "upload-1", table_csv())
    again = upload(client, "upload-1", table_csv())
    other = upload(client, "upload-1", table_csv(rows=61))

    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert len(client.get("/v1/datasets").json()["items"]) == 1


def test_a_retried_sweep_returns_the_first_sweep_and_queues_its_trials_once(
    client: TestClient, settings: Settings
) -> None:
    headers = {"Idempotency-Key": "sweep-1"}
    first = client.post("/v1/sweeps", json=sweep_body(), headers=headers)
    again = client.post("/v1/sweeps", json=sweep_body(), headers=headers)
    other = client.post("/v1/sweeps", json=sweep_body(max_trials=5), headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert len(client.get("/v1/sweeps").json()["items"]) == 1
    assert queued_messages(settings) == 4  # max_parallel trials, once
