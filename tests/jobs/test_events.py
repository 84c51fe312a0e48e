"""Server-sent events through real processes: epochs arrive as they finish, reconnects resume exactly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.db.changes import ChangeHub, ChangePublisher
from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job
from core.jobs import logs, repository
from core.settings import Settings
from core.spec.job import JobSpec
from core.states import JobStatus, StopReason
from service.events import stream
from steadyfit.client import Client
from tests.fixtures import (
    DIGITS_SPEC,
    Process,
    api_process,
    bearer,
    create_key,
    settings_env,
    tiny_spec,
    wait_for,
    wait_for_job,
)


def read_events(http: httpx.Client, path: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every event of a stream until the server ends it: [{"id": ..., "event": ..., "data": ...}]."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with http.stream("GET", path, headers=headers, timeout=httpx.Timeout(10, read=60)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append(current)
                current = {}
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(": ")
                current[field] = json.loads(value) if field == "data" else value
    return events


def test_the_stream_carries_each_epoch_then_ends_after_the_final_status(
    api_server: httpx.Client, worker: Process
) -> None:
    job_id = api_server.post("/v1/jobs", json=DIGITS_SPEC).json()["id"]

    events = read_events(api_server, f"/v1/jobs/{job_id}/events?logs_after=0")
    job = wait_for_job(api_server, job_id, stall=5)

    epochs = [e for e in events if e["event"] == "epoch"]
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert [int(e["id"]) for e in epochs] == list(range(1, job["epochs_completed"] + 1))
    assert [e["data"]["epoch"] for e in epochs] == [int(e["id"]) for e in epochs]
    assert statuses[-1] == "succeeded" and events[-1]["event"] == "status"
    assert "running" in statuses
    assert epochs[0]["data"]["val_loss"] > 0
    # Each epoch's log line comes with it, numbered from 1, all of them before the final status.
    lines = [e["data"] for e in events if e["event"] == "log"]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    logged = [line["message"].split(":")[0] for line in lines if line["message"].startswith("epoch ")]
    assert logged == [f"epoch {n}" for n in range(1, job["epochs_completed"] + 1)]
    assert all("id" not in e for e in events if e["event"] == "log")
    later = read_events(api_server, f"/v1/jobs/{job_id}/events?logs_after={lines[-2]['seq']}")
    assert [e["data"]["seq"] for e in later if e["event"] == "log"] == [lines[-1]["seq"]]
    # Without logs_after, a stream carries only what it always has: epochs and statuses.
    plain = read_events(api_server, f"/v1/jobs/{job_id}/events")
    assert {e["event"] for e in plain} == {"epoch", "status"}


def test_a_reconnect_with_last_event_id_resumes_after_that_epoch(api_server: httpx.Client, worker: Process) -> None:
    job_id = api_server.post("/v1/jobs", json=DIGITS_SPEC).json()["id"]
    wait_for_job(api_server, job_id, epochs=3)

    events = read_events(api_server, f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "3"})

    assert next(e for e in events if e["event"] == "epoch")["id"] == "4"
    assert events[-1]["data"]["status"] == "succeeded"


def test_events_of_an_unknown_job_are_a_404(api_server: httpx.Client) -> None:
    assert api_server.get("/v1/jobs/nope/events").status_code == 404


def test_the_streams_of_one_job_share_one_read_per_change(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten streams of one job in one process: each gets every epoch once, and the database is read once per
    change (plus fallback polls), not once per stream; a stream resuming after epoch 1 starts at epoch 2."""
    database = Database(database_url)
    with database.session() as session:
        spec = JobSpec.model_validate(tiny_spec()).model_dump(mode="json")
        job = repository.add(session, Job(id=str(uuid.uuid4()), status="queued", task="classification", spec=spec))
        repository.claim(session, job.id, "w", lease_seconds=60, max_attempts=3)
        repository.record_epoch(session, job.id, "w", 1, {"val_loss": 0.9}, 1, {"val_loss": 0.9})
    reads: list[int] = []
    real_read = stream._read

    def counted_read(*args: Any) -> Any:
        reads.append(1)
        return real_read(*args)

    monkeypatch.setattr(stream, "_read", counted_read)

    async def collect(events: AsyncIterator[str]) -> list[str]:
        return [event async for event in events if not event.startswith(":")]

    async def scenario() -> list[list[str]]:
        hub = ChangeHub(settings, database)
        await hub.start()
        feeds = stream.JobFeeds(database, hub)
        tasks = [asyncio.create_task(collect(stream.job_events(feeds, job.id, 0, None, 3600))) for _ in range(10)]
        tasks.append(asyncio.create_task(collect(stream.job_events(feeds, job.id, 1, None, 3600))))
        while not reads:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # every stream has sent epoch 1 by now
        with database.session() as session:
            repository.record_epoch(session, job.id, "w", 2, {"val_loss": 0.8}, 2, {"val_loss": 0.8})
            repository.finish(
                session, job.id, "w", JobStatus.SUCCEEDED, stop_reason=StopReason.MAX_EPOCHS, epochs_completed=2
            )
        ChangePublisher(settings).job_changed(job.id)
        results = await asyncio.wait_for(asyncio.gather(*tasks), 15)
        await hub.stop()
        return results

    results = asyncio.run(scenario())
    database.dispose()

    def epochs(events: list[str]) -> list[int]:
        return [int(e.split("\n")[0].removeprefix("id: ")) for e in events if "event: epoch" in e]

    assert [epochs(events) for events in results] == [[1, 2]] * 10 + [[2]]
    assert all("event: status" in events[-1] and '"succeeded"' in events[-1] for events in results)
    assert len(reads) <= 4, len(reads)  # per stream it would be 22 or more


def test_embedded_streams_share_one_poll_and_read_a_job_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty streams on twenty queued jobs in embedded mode (SQLite, no Redis): one query a round looks at
    all the jobs, and no stream reads the database while nothing changes; one change is one read per job."""
    settings = Settings(data_dir=tmp_path)
    upgrade(settings.resolved_database_url)
    database = Database(settings.resolved_database_url)
    spec = JobSpec.model_validate(tiny_spec()).model_dump(mode="json")
    with database.session() as session:
        jobs = [
            repository.add(session, Job(id=str(uuid.uuid4()), status="queued", task="classification", spec=spec)).id
            for _ in range(20)
        ]
    reads: list[str] = []
    polls: list[int] = []
    real_read, real_marks = stream._read, repository.change_marks

    def counted_read(database: Database, job_id: str, after_epoch: int, after_log: int) -> Any:
        reads.append(job_id)
        return real_read(database, job_id, after_epoch, after_log)

    def counted_marks(session: Any, job_ids: Any) -> Any:
        polls.append(len(job_ids))
        return real_marks(session, job_ids)

    monkeypatch.setattr(stream, "_read", counted_read)
    monkeypatch.setattr(repository, "change_marks", counted_marks)

    async def collect(events: AsyncIterator[str]) -> list[str]:
        return [event async for event in events if not event.startswith(":")]

    async def polls_pass(count: int) -> None:
        target = len(polls) + count
        while len(polls) < target:
            await asyncio.sleep(0.02)

    async def scenario() -> tuple[list[list[str]], int, int]:
        hub = ChangeHub(settings, database)
        await hub.start()
        feeds = stream.JobFeeds(database, hub)
        tasks = [asyncio.create_task(collect(stream.job_events(feeds, job_id, 0, None, 3600))) for job_id in jobs]
        settled = -1
        while settled != len(reads):  # the first reads done: three rounds in a row without one
            settled = len(reads)
            await asyncio.wait_for(polls_pass(3), 10)
        await polls_pass(10)
        quiet = len(reads) - settled
        with database.session() as session:
            for job_id in jobs:
                repository.cancel_queued(session, job_id)
        results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await hub.stop()
        return results, quiet, len(reads) - settled

    results, reads_while_quiet, reads_after_the_change = asyncio.run(scenario())
    database.dispose()

    assert reads_while_quiet == 0  # each stream polling on its own would read 200 times in 10 rounds
    assert reads_after_the_change == 20
    assert set(polls) == {20}  # every round is one query over all the watched jobs
    for events in results:
        statuses = [json.loads(e.split("data: ", 1)[1])["status"] for e in events if "event: status" in e]
        assert statuses == ["queued", "cancelled"]


def open_streams(http: httpx.Client, path: str, count: int, stack: contextlib.ExitStack) -> list[httpx.Response]:
    responses = [stack.enter_context(http.stream("GET", path)) for _ in range(count)]
    assert [r.status_code for r in responses] == [200] * count
    return responses


def test_an_owner_holds_at_most_max_streams_per_owner_streams(
    api_server: httpx.Client, database_url: str, settings: Settings
) -> None:
    """The 61st stream of one owner (the default limit is 60) is a 429 with Retry-After; closing one frees a
    slot; another owner's streams are counted apart."""
    limit = settings.max_streams_per_owner
    assert limit == 60
    job_id = api_server.post("/v1/jobs", json=DIGITS_SPEC).json()["id"]  # stays queued: no worker
    path = f"/v1/jobs/{job_id}/events"
    many = httpx.Limits(max_connections=limit + 5)
    timeout = httpx.Timeout(10, read=60)
    with (
        httpx.Client(base_url=api_server.base_url, headers=api_server.headers, limits=many, timeout=timeout) as http,
        contextlib.ExitStack() as stack,
    ):
        streams = open_streams(http, path, limit, stack)

        refused = http.get(path)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        assert "max_streams_per_owner" in refused.json()["detail"]
        bob = bearer(create_key(database_url, "bob"))
        bobs_job = http.post("/v1/jobs", json=DIGITS_SPEC, headers=bob).json()["id"]
        with http.stream("GET", f"/v1/jobs/{bobs_job}/events", headers=bob) as other:
            assert other.status_code == 200  # another owner is counted apart

        streams[0].close()

        def reopened() -> bool:
            response = stack.enter_context(http.stream("GET", path))
            return response.status_code == 200

        wait_for(reopened, 10, "a slot freed by the closed stream")


class Trainer:
    """Plays a worker's part on a job: writes its epochs and status, then tells the API processes."""

    def __init__(self, settings: Settings, job_id: str) -> None:
        self.database, self.job_id = Database(settings.resolved_database_url), job_id
        self.publisher = ChangePublisher(settings)
        with self.database.session() as session:
            repository.claim(session, job_id, "w", lease_seconds=600, max_attempts=3)

    def epochs(self, *numbers: int) -> None:
        with self.database.session() as session:
            for epoch in numbers:
                repository.record_epoch(session, self.job_id, "w", epoch, {"val_loss": 1 / epoch}, epoch, {})
                logs.append(session, self.job_id, [(datetime.now(UTC), "INFO", "workers.runner", f"epoch {epoch}")])
        self.publisher.job_changed(self.job_id)

    def finish(self) -> None:
        with self.database.session() as session:
            repository.finish(session, self.job_id, "w", JobStatus.SUCCEEDED, stop_reason=StopReason.MAX_EPOCHS)
        self.publisher.job_changed(self.job_id)
        self.database.dispose()


def follow(http: httpx.Client, job_id: str, last: int, until_epoch: int) -> tuple[list[int], int, dict[str, Any]]:
    """Streams of the job, each resumed with Last-Event-ID after the one before ends at its lifetime, until
    epoch `until_epoch` has come or the job has ended: (the epochs received, the last id, the last event)."""
    epochs: list[int] = []
    while True:
        events = read_events(http, f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": str(last)})
        epochs += [int(e["id"]) for e in events if e["event"] == "epoch"]
        last = epochs[-1] if epochs else last
        end = events[-1]
        if end["event"] == "status":
            return epochs, last, end
        assert end["event"] == "reconnect"
        assert int(end["id"]) == last and end["data"] == {"last_event_id": last, "retry_ms": int(end["retry"])}
        assert int(end["retry"]) > 0
        if last >= until_epoch:
            return epochs, last, end


def test_a_stream_ends_at_its_lifetime_with_a_reconnect_event_and_resumes_exactly(
    settings: Settings, tmp_path: Path, api_key: str
) -> None:
    """With a one-second lifetime a stream ends with `event: reconnect`, which carries `retry:` and the last
    epoch sent as its id; reconnecting with Last-Event-ID gives each later epoch once. The Python client
    does the same by itself and never hands the reconnect event to its caller."""
    env = {**settings_env(settings), "STEADYFIT_MAX_STREAM_SECONDS": "1"}
    with (
        api_process(env, tmp_path / "api.log") as base_url,
        httpx.Client(base_url=base_url, timeout=10, headers=bearer(api_key)) as http,
    ):
        job_id = http.post("/v1/jobs", json=tiny_spec()).json()["id"]
        trainer = Trainer(settings, job_id)
        trainer.epochs(1, 2)
        first, last, end = follow(http, job_id, 0, until_epoch=2)
        assert end["event"] == "reconnect" and last == 2
        again, last, end = follow(http, job_id, last, until_epoch=2)  # nothing new: the same resume point
        assert again == [] and end["event"] == "reconnect" and last == 2
        trainer.epochs(3, 4)
        then, last, end = follow(http, job_id, last, until_epoch=4)
        assert end["event"] == "reconnect"
        trainer.epochs(5)
        trainer.finish()
        rest, last, end = follow(http, job_id, last, until_epoch=5)
        assert end["event"] == "status" and end["data"]["status"] == "succeeded"
        assert first + then + rest == [1, 2, 3, 4, 5]

        followed_id = http.post("/v1/jobs", json=tiny_spec()).json()["id"]
        followed: list[Any] = []
        reader = threading.Thread(target=lambda: followed.extend(Client(base_url, api_key=api_key).events(followed_id)))
        reader.start()
        trainer = Trainer(settings, followed_id)
        for epoch in (1, 2, 3):
            time.sleep(2.5)  # longer than a stream lives: the client reconnects meanwhile
            trainer.epochs(epoch)
        trainer.finish()
        reader.join(30)

        logged_id = http.post("/v1/jobs", json=tiny_spec()).json()["id"]
        logged: list[Any] = []
        client = Client(base_url, api_key=api_key)
        reader = threading.Thread(target=lambda: logged.extend(client.events(logged_id, logs=True)))
        reader.start()
        trainer = Trainer(settings, logged_id)
        for epoch in (1, 2):
            time.sleep(2.5)  # longer than a stream lives: the client reconnects meanwhile
            trainer.epochs(epoch)
        trainer.finish()
        reader.join(30)

    assert [event.event for event in followed if event.event != "status"] == ["epoch"] * 3
    assert [event.data["epoch"] for event in followed if event.event == "epoch"] == [1, 2, 3]
    assert followed[-1].event == "status" and followed[-1].data["status"] == "succeeded"
    # With logs, each line comes once across the reconnects, after its epoch.
    assert [(e.event, e.data.get("epoch", e.data.get("message"))) for e in logged if e.event != "status"] == [
        ("epoch", 1), ("log", "epoch 1"), ("epoch", 2), ("log", "epoch 2"),
    ]  # fmt: skip
