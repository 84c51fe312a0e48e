"""The jobs API through HTTP, on a real PostgreSQL database and a real Redis broker (no worker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.db.engine import Database
from core.db.models import Job
from core.settings import Settings
from tests.fixtures import DIGITS_SPEC, REDIS_URL, tiny_spec


def submit(client: TestClient, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def field_errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def test_example_spec_is_accepted_queued_and_sent_to_the_broker(client: TestClient, settings: Settings) -> None:
    response = client.post("/v1/jobs", json=DIGITS_SPEC)

    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["task"] == "classification"
    assert job["spec"]["model"]["dropout"] == 0.5
    assert job["spec"]["loss"] == {"name": "cross_entropy", "delta": 1.0}
    assert job["created_at"].endswith("Z") or "+00:00" in job["created_at"]
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
    # The message went to this test's own queue on the real Redis, after the row was committed.
    assert redis.Redis.from_url(REDIS_URL).llen(settings.queue_name) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": {"dropout": 1.5}}, "model.dropout"),
        ({"dataset": {"name": "mnist-from-the-internet"}}, "dataset.name"),
        ({"surprise": True}, "surprise"),
        ({"optimizer": {"name": "adam", "lr": -1}}, "optimizer.lr"),
        ({"training": {"epochs": 0}}, "training.epochs"),
        ({"model": {"hidden_layers": [8, 4], "dropout": [0.1]}}, "model"),
        ({"model": {"dropout": 0.2, "dropout_type": "spatial"}}, "model"),
        ({"model": {"dropout_type": "bernoulli"}}, "model.dropout_type"),
        ({"augmentation": {"flip": True}}, "augmentation"),  # iris has no images to flip
        ({"loss": "mse"}, "loss"),
        ({"early_stopping": {"monitor": "val_r2"}}, "early_stopping.monitor"),
    ],
)
def test_an_invalid_spec_is_a_422_naming_the_field(client: TestClient, change: dict[str, Any], field: str) -> None:
    errors = field_errors(client.post("/v1/jobs", json={**tiny_spec(), **change}))
    assert field in errors


def test_a_regression_job_rejects_classification_losses(client: TestClient) -> None:
    errors = field_errors(client.post("/v1/jobs", json=tiny_spec(dataset={"name": "diabetes"}, loss="cross_entropy")))
    assert "regression" in errors["loss"]


def test_init_from_must_name_a_succeeded_job(client: TestClient) -> None:
    queued = submit(client, tiny_spec())
    unknown = client.post("/v1/jobs", json=tiny_spec(init_from={"job_id": "nope"}))
    not_done = client.post("/v1/jobs", json=tiny_spec(init_from={"job_id": queued["id"]}))
    assert "init_from.job_id" in field_errors(unknown)
    assert "queued" in field_errors(not_done)["init_from.job_id"]


def test_unknown_job_is_a_404_everywhere(client: TestClient) -> None:
    for method, path in [("GET", ""), ("GET", "/metrics"), ("POST", "/cancel")]:
        response = client.request(method, f"/v1/jobs/does-not-exist{path}")
        assert response.status_code == 404
        assert response.json()["detail"] == "no job `does-not-exist`"


def test_list_is_newest_first_with_cursor_pages_and_status_filter(client: TestClient) -> None:
    ids = [submit(client, tiny_spec(name=f"job-{i}"))["id"] for i in range(5)]
    client.post(f"/v1/jobs/{ids[1]}/cancel")

    first = client.get("/v1/jobs", params={"limit": 2}).json()
    second = client.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get("/v1/jobs", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    cancelled = client.get("/v1/jobs", params={"status": "cancelled"}).json()

    assert [j["id"] for j in first["items"] + second["items"] + third["items"]] == ids[::-1]
    assert third["next_cursor"] is None
    assert [j["id"] for j in cancelled["items"]] == [ids[1]]
    assert field_errors(client.get("/v1/jobs", params={"cursor": "garbage"})) == {
        "cursor": "not a cursor this API returned"
    }
    assert "status" in field_errors(client.get("/v1/jobs", params={"status": "sleeping"}))


def test_the_list_filters_by_id_prefix_among_the_callers_own_jobs(client: TestClient, settings: Settings) -> None:
    alices = ["abcdef12-0000-4000-8000-000000000001", "abcdef12-0000-4000-8000-000000000002"]
    database = Database(settings.resolved_database_url, pooled=False)
    with database.session() as session:
        for job_id, owner in [
            *((job_id, "alice") for job_id in alices),
            ("abcdef12-9999-4000-8000-0000000000b0", "bob"),
        ]:
            session.add(Job(id=job_id, owner=owner, status="queued", task="classification", spec=tiny_spec()))
    database.dispose()

    def listed(prefix: str) -> list[str]:
        return sorted(j["id"] for j in client.get("/v1/jobs", params={"id_prefix": prefix}).json()["items"])

    assert listed("abcdef12") == alices  # never bob's
    assert listed(alices[1][:-1] + "2") == [alices[1]]
    assert listed("abcdef13") == []
    assert "id_prefix" in field_errors(client.get("/v1/jobs", params={"id_prefix": "abc%"}))


def test_cancel_of_a_queued_job_is_final_and_a_second_cancel_is_a_409(client: TestClient) -> None:
    job = submit(client, tiny_spec())

    response = client.post(f"/v1/jobs/{job['id']}/cancel")
    again = client.post(f"/v1/jobs/{job['id']}/cancel")

    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert response.json()["stop_reason"] == "cancelled"
    assert response.json()["finished_at"] is not None
    assert again.status_code == 409


def test_metrics_of_a_job_without_epochs_are_empty(client: TestClient) -> None:
    job = submit(client, tiny_spec())
    body = client.get(f"/v1/jobs/{job['id']}/metrics", params={"after_epoch": 0}).json()
    assert body == {"job_id": job["id"], "status": "queued", "items": []}


def test_healthz_reports_both_parts(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_is_503_naming_the_part_that_is_down(client_with: Callable[..., TestClient]) -> None:
    from tests.fixtures import free_port

    with client_with(broker_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "down", "database": "ok", "broker": "down"}

    with client_with(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing") as client:
        health = client.get("/healthz")
        listing = client.get("/v1/jobs")
    assert health.status_code == 503
    assert health.json()["database"] == "down"
    assert listing.status_code == 503
    assert listing.headers["content-type"] == "application/problem+json"


def test_openapi_documents_every_route_with_an_operation_id(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert {op["operationId"] for op in operations} >= {
        "create_job",
        "list_jobs",
        "get_job",
        "get_job_metrics",
        "cancel_job",
        "health",
    }
    assert all(op.get("summary") or op.get("description") for op in operations)


def test_a_repeated_poll_with_the_etag_is_a_304_until_the_job_changes(client: TestClient) -> None:
    job = submit(client, tiny_spec())
    first = client.get(f"/v1/jobs/{job['id']}")
    etag = first.headers["etag"]

    unchanged = client.get(f"/v1/jobs/{job['id']}", headers={"If-None-Match": etag})
    metrics = client.get(f"/v1/jobs/{job['id']}/metrics")
    metrics_unchanged = client.get(f"/v1/jobs/{job['id']}/metrics", headers={"If-None-Match": metrics.headers["etag"]})
    client.post(f"/v1/jobs/{job['id']}/cancel")
    changed = client.get(f"/v1/jobs/{job['id']}", headers={"If-None-Match": etag})

    assert first.headers["cache-control"] == "private, no-cache"
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["etag"] == etag
    assert metrics_unchanged.status_code == 304
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.headers["cache-control"] == "private, max-age=3600"  # cancelled: final


def test_the_job_list_answers_304_until_any_job_changes(client: TestClient) -> None:
    submit(client, tiny_spec())
    etag = client.get("/v1/jobs").headers["etag"]

    unchanged = client.get("/v1/jobs", headers={"If-None-Match": etag})
    submit(client, tiny_spec())
    after_submit = client.get("/v1/jobs", headers={"If-None-Match": etag})

    assert unchanged.status_code == 304
    assert after_submit.status_code == 200 and len(after_submit.json()["items"]) == 2


def test_prometheus_metrics_count_jobs_by_status_and_time_requests(client_with: Callable[..., TestClient]) -> None:
    with client_with(metrics_token=SecretStr("scrape-token")) as client:
        submit(client, tiny_spec())
        cancelled = submit(client, tiny_spec())
        client.post(f"/v1/jobs/{cancelled['id']}/cancel")
        text = client.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).text

    assert 'steadyfit_jobs{status="queued"} 1.0' in text
    assert 'steadyfit_jobs{status="cancelled"} 1.0' in text
    assert "steadyfit_queue_depth 2.0" in text  # both messages still wait: no worker runs here
    assert "steadyfit_epochs_trained_total 0.0" in text
    assert 'steadyfit_api_request_duration_seconds_count{method="POST",route="/v1/jobs",status="202"}' in text


def test_cors_allows_only_the_configured_origins(client_with: Callable[..., TestClient]) -> None:
    with client_with(cors_origins=["https://dash.example"]) as client:
        preflight = client.options(
            "/v1/jobs",
            headers={"Origin": "https://dash.example", "Access-Control-Request-Method": "POST"},
        )
        listing = client.get("/v1/jobs", headers={"Origin": "https://dash.example"})
        stranger = client.get("/v1/jobs", headers={"Origin": "https://elsewhere.example"})
    with client_with() as client:
        by_default = client.get("/v1/jobs", headers={"Origin": "https://dash.example"})

    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://dash.example"
    assert listing.headers["access-control-allow-origin"] == "https://dash.example"
    assert "etag" in listing.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in stranger.headers
    assert "access-control-allow-origin" not in by_default.headers  # the allow-list is empty by default
