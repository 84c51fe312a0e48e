"""Webhooks end to end: the API and Celery workers as real processes on PostgreSQL and Redis, and a receiver
on 127.0.0.1 (which the server is told to allow). A succeeded job is delivered signed, and the README's
snippet verifies it; a receiver's 500s are retried until it answers 200; a worker killed with kill -9 while
the receiver holds its request leaves the delivery to another worker. A job whose val_accuracy crosses a
webhook's threshold sends one signed metric.threshold delivery, of the first epoch that met it; one that never
crosses it sends none."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from core.webhooks import signing
from tests.fixtures import Process, api_process, bearer, settings_env, tiny_spec, wait_for, wait_for_job
from tests.readme_examples import python_block_after
from tests.webhooks.receiver import STALL, Receiver, receiving

Deliveries = Callable[[str], list[dict[str, Any]]]


@pytest.fixture
def process_env(settings: Settings) -> dict[str, str]:
    """Quick retries and a short lease, and the receiver's loopback address allowed (conftest's workers too)."""
    return {
        **settings_env(settings),
        "STEADYFIT_WEBHOOK_ALLOW_PRIVATE": "true",
        "STEADYFIT_WEBHOOK_RETRY_SECONDS": "0.2",
        "STEADYFIT_WEBHOOK_POLL_SECONDS": "0.1",
        "STEADYFIT_WEBHOOK_LEASE_SECONDS": "2",
        "STEADYFIT_WEBHOOK_TIMEOUT_SECONDS": "60",  # a stalled receiver outlasts the lease: its worker is killed
    }


@pytest.fixture
def http(process_env: dict[str, str], tmp_path: Path, api_key: str) -> Iterator[httpx.Client]:
    with (
        api_process(process_env, tmp_path / "api.log") as base_url,
        httpx.Client(base_url=base_url, timeout=10, headers=bearer(api_key)) as client,
    ):
        yield client


def subscribe(http: httpx.Client, receiver: Receiver) -> dict[str, Any]:
    response = http.post("/v1/webhooks", json={"url": receiver.url, "events": ["job.succeeded"]})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def succeeded_job(http: httpx.Client) -> str:
    job_id: str = http.post("/v1/jobs", json=tiny_spec()).json()["id"]
    assert wait_for_job(http, job_id)["status"] == "succeeded"
    return job_id


def delivered(http: httpx.Client, webhook_id: str) -> dict[str, Any]:
    """The webhook's one delivery, once it has ended."""

    def ended() -> dict[str, Any] | None:
        [delivery] = http.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["items"]
        return delivery if delivery["status"] != "pending" else None

    found: dict[str, Any] = wait_for(ended, 90, "the delivery to end")
    return found


def test_a_succeeded_job_is_delivered_signed_and_the_readmes_snippet_verifies_it(
    http: httpx.Client, start_worker: Callable[[str], Process]
) -> None:
    with receiving() as receiver:
        webhook = subscribe(http, receiver)
        start_worker("worker")
        job_id = succeeded_job(http)
        delivery = delivered(http, webhook["id"])
        [received] = receiver.received

    readme: dict[str, Any] = {}
    exec(python_block_after("To verify a delivery"), readme)
    signature = received.headers["Steadyfit-Signature"]
    assert readme["verify"](webhook["secret"], received.body, signature)
    assert not readme["verify"](webhook["secret"], received.body.replace(b"succeeded", b"failed"), signature)
    assert not readme["verify"]("whsec_another", received.body, signature)

    body = json.loads(received.body)
    assert body["type"] == "job.succeeded" and received.headers["Steadyfit-Event-Type"] == "job.succeeded"
    assert body["id"] == received.headers["Steadyfit-Event-Id"] == delivery["event_id"]
    assert body["data"]["id"] == job_id and body["data"]["status"] == "succeeded"
    assert body["data"]["stop_reason"] == "max_epochs" and body["data"]["epochs_completed"] == 5
    assert received.headers["Content-Type"] == "application/json"
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 1
    assert delivery["attempt_log"][0]["status_code"] == 200 and delivery["next_attempt_at"] is None


def test_a_receiver_that_answers_500_is_tried_again_until_it_answers_200(
    http: httpx.Client, start_worker: Callable[[str], Process]
) -> None:
    with receiving([500, 503]) as receiver:
        webhook = subscribe(http, receiver)
        start_worker("worker")
        succeeded_job(http)
        delivery = delivered(http, webhook["id"])
        event_ids = {received.headers["Steadyfit-Event-Id"] for received in receiver.received}
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
    assert [attempt["status_code"] for attempt in delivery["attempt_log"]] == [500, 503, 200]
    assert len(receiver.received) == 3 and event_ids == {delivery["event_id"]}


def test_a_worker_killed_mid_delivery_leaves_it_to_another_worker(
    http: httpx.Client, start_worker: Callable[[str], Process]
) -> None:
    with receiving([STALL]) as receiver:
        webhook = subscribe(http, receiver)
        first = start_worker("first")
        succeeded_job(http)
        wait_for(lambda: receiver.received, 90, "the first attempt to reach the receiver")
        first.stop(signal.SIGKILL)  # kill -9, while the receiver holds the request
        start_worker("second")
        delivery = delivered(http, webhook["id"])
        event_ids = [received.headers["Steadyfit-Event-Id"] for received in receiver.received]
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 2
    assert [(a["status_code"], a["error"]) for a in delivery["attempt_log"]] == [
        (None, "the worker sending it was lost before it recorded an answer"),
        (200, None),
    ]
    assert event_ids == [delivery["event_id"]] * 2


def test_a_job_that_crosses_a_threshold_sends_one_signed_event_and_one_that_never_does_sends_none(
    http: httpx.Client, start_worker: Callable[[str], Process]
) -> None:
    threshold = {"metric": "val_accuracy", "op": ">=", "value": 0.7}
    with receiving() as receiver:
        body = {"url": receiver.url, "events": ["metric.threshold"], "threshold": threshold}
        webhook = http.post("/v1/webhooks", json=body).json()
        start_worker("worker")
        short = http.post("/v1/jobs", json=tiny_spec(training={"epochs": 1, "batch_size": 16, "seed": 1})).json()
        crossing = http.post("/v1/jobs", json=tiny_spec()).json()
        for job in (short, crossing):
            assert wait_for_job(http, job["id"])["status"] == "succeeded"
        # Both jobs have ended, so each one's event, if any, was recorded after its epoch and before its end.
        delivery = delivered(http, webhook["id"])
        [received] = receiver.received

    accuracies = [epoch["val_accuracy"] for epoch in http.get(f"/v1/jobs/{crossing['id']}/metrics").json()["items"]]
    short_accuracy = http.get(f"/v1/jobs/{short['id']}/metrics").json()["items"][0]["val_accuracy"]
    first_met = next(epoch for epoch, accuracy in enumerate(accuracies, 1) if accuracy >= 0.7)
    assert short_accuracy < 0.7 and accuracies[0] < 0.7  # a crossing, not a start above it
    assert sum(accuracy >= 0.7 for accuracy in accuracies) > 1  # met again after: still one event

    event = json.loads(received.body)
    assert event["type"] == "metric.threshold" == received.headers["Steadyfit-Event-Type"]
    assert event["id"] == received.headers["Steadyfit-Event-Id"] == delivery["event_id"]
    data = event["data"]
    assert data["id"] == crossing["id"] and data["status"] == "running" and data["epochs_completed"] == first_met
    assert {key: data[key] for key in ("metric", "op", "value", "epoch")} == {**threshold, "epoch": first_met}
    assert data["observed"] == accuracies[first_met - 1]
    signature = received.headers["Steadyfit-Signature"]
    sent_at = int(signature.split(",")[0].removeprefix("t="))
    assert signing.signature(webhook["secret"], sent_at, received.body) == signature
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 1
