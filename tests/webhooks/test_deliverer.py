"""The delivery loop against a receiver on 127.0.0.1, in this process, on PostgreSQL and on the embedded mode's
SQLite: the address is checked again at delivery time, attempts are bounded, and a delivery whose worker was
lost is sent by another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job, Webhook, WebhookDelivery
from core.settings import Settings
from core.states import JobStatus, WebhookEvent
from core.webhooks import outbox, repository
from tests.fixtures import tiny_spec, wait_for
from tests.webhooks.receiver import receiving
from workers.webhooks import Deliverer


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'steadyfit.db'}"
        upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


def one_event(database: Database, url: str) -> None:
    """A webhook of alice's at `url`, and a cancelled job of hers whose event it is to be sent."""
    with database.session() as session:
        session.add(Webhook(id="hook", owner="alice", url=url, events=["job.cancelled"], secret="whsec_test"))
        session.add(Job(id="job", owner="alice", status=JobStatus.CANCELLED, task="classification", spec=tiny_spec()))
        session.flush()
        outbox.job_events(session, ["job"], WebhookEvent.JOB_CANCELLED)


def the_delivery(database: Database) -> WebhookDelivery:
    with database.session() as session:
        return session.scalars(select(WebhookDelivery)).one()


def deliverer(database: Database, settings: Settings, **changes: Any) -> Deliverer:
    quick = {"webhook_allow_private": True, "webhook_retry_seconds": 0.01, "webhook_timeout_seconds": 10, **changes}
    return Deliverer(database, settings.model_copy(update=quick))


def test_an_address_refused_at_delivery_time_is_not_sent_to_and_the_attempt_says_why(
    database: Database, settings: Settings
) -> None:
    with receiving() as receiver:
        one_event(database, receiver.url)  # as if the name had resolved to a public address when it was created
        assert deliverer(database, settings, webhook_allow_private=False).round()
        assert receiver.received == []
    delivery = the_delivery(database)
    assert delivery.status == "pending" and delivery.attempts == 1
    [attempt] = delivery.attempt_log
    assert attempt["status_code"] is None and "resolves to 127.0.0.1" in attempt["error"]


def test_a_delivery_answered_500_every_time_fails_after_its_last_attempt(
    database: Database, settings: Settings
) -> None:
    with receiving([500, 500, 500]) as receiver:
        one_event(database, receiver.url)
        sender = deliverer(database, settings, webhook_max_attempts=2)
        wait_for(lambda: not sender.round() and the_delivery(database).status == "failed", 30, "the last attempt")
        assert len(receiver.received) == 2
    delivery = the_delivery(database)
    assert delivery.attempts == 2 and delivery.finished_at is not None
    assert [(a["status_code"], a["error"]) for a in delivery.attempt_log] == [
        (500, "answered 500 Internal Server Error")
    ] * 2


def test_a_delivery_whose_worker_was_lost_is_sent_by_another_once_its_lease_expires(
    database: Database, settings: Settings
) -> None:
    with receiving() as receiver:
        one_event(database, receiver.url)
        with database.session() as session:  # a worker takes it, then dies without a word
            [lost] = repository.claim_due(session, "lost", lease_seconds=0.5, max_attempts=3, limit=1)
        sender = deliverer(database, settings)
        wait_for(sender.round, 30, "the lease to expire and the delivery to be sent")
        [received] = receiver.received
    delivery = the_delivery(database)
    assert delivery.status == "succeeded" and delivery.attempts == 2
    assert [a["error"] for a in delivery.attempt_log] == [repository.LOST, None]
    assert received.headers["Steadyfit-Event-Id"] == lost.event_id == delivery.event_id


def test_a_delivery_lost_on_its_last_attempt_fails(database: Database, settings: Settings) -> None:
    one_event(database, "http://127.0.0.1:9/never")
    with database.session() as session:
        repository.claim_due(session, "lost", lease_seconds=0.01, max_attempts=1, limit=1)
    sender = deliverer(database, settings, webhook_max_attempts=1)
    wait_for(lambda: not sender.round() and the_delivery(database).status == "failed", 30, "the delivery to fail")
    assert [a["error"] for a in the_delivery(database).attempt_log] == [repository.LOST]


def test_a_delivery_connects_to_the_address_it_checked_and_names_the_urls_host(
    database: Database, settings: Settings
) -> None:
    with receiving() as receiver:
        by_name = receiver.url.replace("127.0.0.1", "localhost")
        one_event(database, by_name)
        assert deliverer(database, settings).round()
        [received] = receiver.received
    assert received.headers["Host"] == by_name.split("/")[2]
    assert the_delivery(database).status == "succeeded"
