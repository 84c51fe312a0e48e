"""Server-sent events through real processes: epochs arrive as they finish, reconnects resume exactly."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.db.engine import Database
from service.db.models import Job
from service.events import stream
from service.events.hub import ChangeHub, ChangePublisher
from service.jobs import repository
from service.settings import Settings
from service.spec import JobSpec
from tests.fixtures import DIGITS_SPEC, Process, tiny_spec, wait_for_job


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

    events = read_events(api_server, f"/v1/jobs/{job_id}/events")
    job = wait_for_job(api_server, job_id, stall=5)

    epochs = [e for e in events if e["event"] == "epoch"]
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert [int(e["id"]) for e in epochs] == list(range(1, job["epochs_completed"] + 1))
    assert [e["data"]["epoch"] for e in epochs] == [int(e["id"]) for e in epochs]
    assert statuses[-1] == "succeeded" and events[-1]["event"] == "status"
    assert "running" in statuses
    assert epochs[0]["data"]["val_loss"] > 0


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
        hub = ChangeHub(settings)
        await hub.start()
        feeds = stream.JobFeeds(database, hub)
        tasks = [asyncio.create_task(collect(stream.job_events(feeds, job.id, 0))) for _ in range(10)]
        tasks.append(asyncio.create_task(collect(stream.job_events(feeds, job.id, 1))))
        while not reads:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # every stream has sent epoch 1 by now
        with database.session() as session:
            repository.record_epoch(session, job.id, "w", 2, {"val_loss": 0.8}, 2, {"val_loss": 0.8})
            repository.finish(session, job.id, "w", "succeeded", stop_reason="max_epochs", epochs_completed=2)
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
