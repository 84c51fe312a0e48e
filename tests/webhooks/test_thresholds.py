"""metric.threshold: the rule written and compared (hand-worked), and a job's watch on the real database:
one event per webhook and job at the first epoch that meets it, whichever worker runs the job; each owner's
jobs meet only that owner's thresholds; a webhook created mid-job is read at the next refresh."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job, Webhook, WebhookDelivery
from core.states import JobStatus
from core.webhooks import outbox
from core.webhooks.thresholds import Threshold, Watched, parse, watched
from tests.fixtures import bearer, create_key, tiny_spec
from workers.thresholds import ThresholdWatch

URL = "https://example.com/steadyfit/events"
AT_LEAST_70 = {"metric": "val_accuracy", "op": ">=", "value": 0.7}


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        ("val_accuracy>=0.9", {"metric": "val_accuracy", "op": ">=", "value": 0.9}),
        (" val_loss < 0.25 ", {"metric": "val_loss", "op": "<", "value": 0.25}),
        ("val_r2>1e-1", {"metric": "val_r2", "op": ">", "value": 0.1}),
        ("val_mae<=3", {"metric": "val_mae", "op": "<=", "value": 3.0}),
    ],
)
def test_a_written_threshold_is_parsed(written: str, parsed: dict[str, Any]) -> None:
    assert parse(written) == parsed


@pytest.mark.parametrize(("written", "says"), [("val_accuracy=0.9", "METRIC OP VALUE"), ("val_loss<low", "number")])
def test_a_malformed_threshold_says_what_is_wrong(written: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(written)


@pytest.mark.parametrize(
    ("op", "observed", "met"),
    [
        (">=", 0.9, True),
        (">=", 0.89, False),
        (">", 0.9, False),
        (">", 0.91, True),
        ("<=", 0.9, True),
        ("<", 0.9, False),
        ("<", -1.0, True),
        (">=", None, False),
        (">=", math.inf, False),
        ("<", math.nan, False),
    ],
)
def test_a_threshold_is_met_by_finite_values_on_its_side(op: Any, observed: float | None, met: bool) -> None:
    assert Threshold("val_accuracy", op, 0.9).met_by(observed) is met


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_webhook_is_watched_until_its_one_event_of_the_job_and_a_second_is_ignored_on_either_database(
    dialect: str, database_url: str, tmp_path: Path
) -> None:
    if dialect == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'steadyfit.db'}"
        upgrade(database_url)
    database = Database(database_url)
    with database.session() as session:
        hook = Webhook(id="hook", owner="alice", url=URL, events=["metric.threshold"], secret="whsec_test")
        session.add_all([hook, Webhook(id="other", owner="alice", url=URL, events=["job.failed"], secret="whsec_2")])
        session.add(Job(id="job", owner="alice", status=JobStatus.RUNNING, task="classification", spec=tiny_spec()))
        hook.threshold = AT_LEAST_70
    met = {**AT_LEAST_70, "epoch": 3, "observed": 0.75}
    with database.session() as session:
        assert watched(session, "alice", "job") == [Watched("hook", Threshold("val_accuracy", ">=", 0.7))]
        assert outbox.threshold_met(session, "hook", "job", met)
        assert not outbox.threshold_met(session, "hook", "job", {**met, "epoch": 4})
        assert watched(session, "alice", "job") == []
    with database.session() as session:
        rows = session.execute(select(WebhookDelivery.job_id, WebhookDelivery.payload)).all()
    database.dispose()
    assert [(job_id, payload["data"]["epoch"]) for job_id, payload in rows] == [("job", 3)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def add_hook(client: TestClient, headers: dict[str, str] | None = None) -> str:
    body = {"url": URL, "events": ["metric.threshold"], "threshold": AT_LEAST_70}
    response = client.post("/v1/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    webhook_id: str = response.json()["id"]
    return webhook_id


def sent(client: TestClient, webhook_id: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    items = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=headers).json()["items"]
    return [item["payload"]["data"] | {"type": item["event_type"]} for item in items]


def test_a_job_sends_one_event_at_the_first_epoch_that_meets_the_threshold(
    client: TestClient, database: Database
) -> None:
    webhook_id = add_hook(client)
    job_id = client.post("/v1/jobs", json=tiny_spec(name="tiny")).json()["id"]
    watch = ThresholdWatch(database, job_id, "alice", refresh_seconds=5, clock=Clock())
    for epoch, accuracy in [(1, 0.5), (2, 0.8), (3, 0.6), (4, 0.9)]:
        watch.after_epoch(epoch, {"val_accuracy": accuracy, "val_loss": 1.0})

    [event] = sent(client, webhook_id)
    assert event["type"] == "metric.threshold" and event["id"] == job_id and event["name"] == "tiny"
    assert {key: event[key] for key in ("metric", "op", "value", "epoch", "observed")} == {
        **AT_LEAST_70,
        "epoch": 2,
        "observed": 0.8,
    }
    # Another worker that resumes the job has nothing left to watch, and a second insert is ignored.
    resumed = ThresholdWatch(database, job_id, "alice", refresh_seconds=5, clock=Clock())
    assert resumed.watched == []
    with database.session() as session:
        assert not outbox.threshold_met(session, webhook_id, job_id, {**AT_LEAST_70, "epoch": 5, "observed": 0.9})
    assert len(sent(client, webhook_id)) == 1


def test_each_owners_jobs_meet_only_that_owners_thresholds(
    client: TestClient, database: Database, database_url: str
) -> None:
    bob = bearer(create_key(database_url, "bob"))
    alices_hook, bobs_hook = add_hook(client), add_hook(client, bob)
    alices_job = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    bobs_job = client.post("/v1/jobs", json=tiny_spec(), headers=bob).json()["id"]
    for job_id, owner in [(alices_job, "alice"), (bobs_job, "bob")]:
        ThresholdWatch(database, job_id, owner, refresh_seconds=5, clock=Clock()).after_epoch(1, {"val_accuracy": 1.0})

    assert [event["id"] for event in sent(client, alices_hook)] == [alices_job]
    assert [event["id"] for event in sent(client, bobs_hook, bob)] == [bobs_job]
    assert client.get(f"/v1/webhooks/{bobs_hook}/deliveries").status_code == 404


def test_a_webhook_created_while_a_job_runs_is_read_at_the_next_refresh(client: TestClient, database: Database) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    clock = Clock()
    watch = ThresholdWatch(database, job_id, "alice", refresh_seconds=5, clock=clock)
    webhook_id = add_hook(client)
    clock.now = 4.9
    watch.after_epoch(1, {"val_accuracy": 0.9})
    assert sent(client, webhook_id) == []
    clock.now = 5.0
    watch.after_epoch(2, {"val_accuracy": 0.9})
    assert [event["epoch"] for event in sent(client, webhook_id)] == [2]


def test_a_webhook_deleted_while_a_job_runs_costs_the_job_nothing(client: TestClient, database: Database) -> None:
    webhook_id = add_hook(client)
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    watch = ThresholdWatch(database, job_id, "alice", refresh_seconds=5, clock=Clock())
    assert client.delete(f"/v1/webhooks/{webhook_id}").status_code == 204
    watch.after_epoch(1, {"val_accuracy": 0.9})  # the insert fails on the foreign key; logged, not raised
    watch.after_epoch(2, {"val_accuracy": 0.9})  # read again: nothing left to watch
    assert watch.watched == []
