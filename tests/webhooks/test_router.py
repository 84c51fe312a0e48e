"""/v1/webhooks through HTTP: created with a secret shown once, listed without it, deleted; bad URLs and
events refused naming the field; each webhook its owner's; events recorded with the change they report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import WebhookDelivery
from core.jobs import repository as jobs_repository
from tests.fixtures import bearer, create_key, sweep_body, tiny_spec

HOOK = {"url": "https://example.com/steadyfit/events", "events": ["job.succeeded", "job.cancelled"]}
THRESHOLD = {"metric": "val_accuracy", "op": ">=", "value": 0.9}
THRESHOLD_HOOK = {**HOOK, "events": ["metric.threshold"], "threshold": THRESHOLD}


def test_a_webhook_is_created_with_its_secret_listed_without_it_and_deleted(client: TestClient) -> None:
    created = client.post("/v1/webhooks", json=HOOK)
    assert created.status_code == 201, created.text
    webhook = created.json()
    assert webhook["secret"].startswith("whsec_") and webhook["owner"] == "alice"
    assert webhook["events"] == ["job.succeeded", "job.cancelled"]

    listed = client.get("/v1/webhooks").json()["items"]
    assert [item["id"] for item in listed] == [webhook["id"]] and "secret" not in listed[0]
    assert client.get(f"/v1/webhooks/{webhook['id']}/deliveries").json() == {"items": [], "next_cursor": None}

    assert client.delete(f"/v1/webhooks/{webhook['id']}").status_code == 204
    assert client.get("/v1/webhooks").json()["items"] == []
    assert client.delete(f"/v1/webhooks/{webhook['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**HOOK, "events": []}, "events"),
        ({**HOOK, "events": ["job.exploded"]}, "events.0"),
        ({**HOOK, "url": "ftp://example.com/in"}, "url"),
        ({**HOOK, "url": "http://127.0.0.1:8000/in"}, "url"),
        ({**HOOK, "url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({**HOOK, "url": "http://[::1]/in"}, "url"),
        ({**THRESHOLD_HOOK, "threshold": None}, "threshold"),
        ({**HOOK, "threshold": THRESHOLD}, "threshold"),
        ({**THRESHOLD_HOOK, "threshold": {**THRESHOLD, "metric": "val_accuracyy"}}, "threshold.metric"),
        ({**THRESHOLD_HOOK, "threshold": {**THRESHOLD, "op": "=="}}, "threshold.op"),
        ({**THRESHOLD_HOOK, "threshold": {"metric": "val_accuracy", "op": ">="}}, "threshold.value"),
        ({**THRESHOLD_HOOK, "threshold": {**THRESHOLD, "value": "high"}}, "threshold.value"),
        ({**THRESHOLD_HOOK, "threshold": {**THRESHOLD, "value": "0.9"}}, "threshold.value"),
        ({**THRESHOLD_HOOK, "threshold": {**THRESHOLD, "epoch": 3}}, "threshold.epoch"),
    ],
)
def test_bad_events_and_urls_that_reach_non_public_addresses_are_a_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/webhooks", json=body)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_a_threshold_webhook_keeps_its_threshold_and_others_have_none(client: TestClient) -> None:
    created = client.post("/v1/webhooks", json={**THRESHOLD_HOOK, "events": ["metric.threshold", "job.failed"]})
    assert created.status_code == 201, created.text
    assert created.json()["threshold"] == THRESHOLD
    client.post("/v1/webhooks", json=HOOK)
    listed = client.get("/v1/webhooks").json()["items"]
    assert [(item["events"], item["threshold"]) for item in listed] == [
        (HOOK["events"], None),
        (["metric.threshold", "job.failed"], THRESHOLD),
    ]


def test_the_server_may_allow_private_addresses(client_with: Callable[..., TestClient]) -> None:
    with client_with(webhook_allow_private=True) as client:
        assert client.post("/v1/webhooks", json={**HOOK, "url": "http://127.0.0.1:9/in"}).status_code == 201


def test_a_webhook_is_its_owners_alone(client: TestClient, database_url: str) -> None:
    webhook_id = client.post("/v1/webhooks", json=HOOK).json()["id"]
    bob = bearer(create_key(database_url, "bob"))
    admin = bearer(create_key(database_url, "root", admin=True))

    assert client.get("/v1/webhooks", headers=bob).json()["items"] == []
    assert client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=bob).status_code == 404
    assert client.delete(f"/v1/webhooks/{webhook_id}", headers=bob).status_code == 404
    assert [item["id"] for item in client.get("/v1/webhooks", headers=admin).json()["items"]] == [webhook_id]

    # Bob's job's events go to Bob's webhooks, of which there are none; Alice's to hers.
    bobs_job = client.post("/v1/jobs", json=tiny_spec(), headers=bob).json()["id"]
    alices_job = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    assert client.post(f"/v1/jobs/{bobs_job}/cancel", headers=bob).status_code == 202
    assert client.post(f"/v1/jobs/{alices_job}/cancel").status_code == 202
    deliveries = client.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["items"]
    assert [(d["event_type"], d["payload"]["data"]["id"]) for d in deliveries] == [("job.cancelled", alices_job)]
    delivery = deliveries[0]
    assert delivery["status"] == "pending" and delivery["attempts"] == 0 and delivery["attempt_log"] == []
    assert delivery["payload"]["id"] == delivery["event_id"] and delivery["payload"]["type"] == "job.cancelled"
    assert delivery["payload"]["data"]["status"] == "cancelled"


def test_an_event_is_recorded_only_if_its_change_commits(client: TestClient, database_url: str) -> None:
    client.post("/v1/webhooks", json=HOOK)
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    database = Database(database_url)
    with database.sessions() as session:
        assert jobs_repository.cancel_queued(session, job_id)
        assert session.scalars(select(WebhookDelivery.event_type)).all() == ["job.cancelled"]
        session.rollback()
    with database.sessions() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []
    database.dispose()


def test_a_job_started_event_is_recorded_at_its_first_start_only(client: TestClient, database_url: str) -> None:
    client.post("/v1/webhooks", json={**HOOK, "events": ["job.started"]})
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    database = Database(database_url)
    with database.session() as session:
        assert jobs_repository.claim(session, job_id, "w1", lease_seconds=60, max_attempts=3) is not None
        assert jobs_repository.release(session, job_id, "w1")  # handed back, as at a worker's shutdown
        assert jobs_repository.claim(session, job_id, "w2", lease_seconds=60, max_attempts=3) is not None
    with database.sessions() as session:
        rows = session.execute(select(WebhookDelivery.event_type, WebhookDelivery.payload)).all()
    database.dispose()
    assert [(event, payload["data"]["status"]) for event, payload in rows] == [("job.started", "running")]


def test_a_cancelled_sweep_records_its_end_and_each_queued_trials(client: TestClient) -> None:
    webhook_id = client.post("/v1/webhooks", json={**HOOK, "events": ["sweep.finished", "job.cancelled"]}).json()["id"]
    sweep = client.post("/v1/sweeps", json=sweep_body(max_parallel=2)).json()
    assert client.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 202
    deliveries = client.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["items"]
    events = sorted((d["event_type"], d["payload"]["data"]["status"]) for d in deliveries)
    assert events == [("job.cancelled", "cancelled")] * 2 + [("sweep.finished", "cancelled")]
    trials = {d["payload"]["data"]["sweep_id"] for d in deliveries if d["event_type"] == "job.cancelled"}
    assert trials == {sweep["id"]}
