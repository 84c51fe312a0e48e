"""Server-sent events through real processes: epochs arrive as they finish, reconnects resume exactly."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.fixtures import DIGITS_SPEC, Process, wait_for, wait_for_job


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
    job = wait_for_job(api_server, job_id, timeout=5)

    epochs = [e for e in events if e["event"] == "epoch"]
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert [int(e["id"]) for e in epochs] == list(range(1, job["epochs_completed"] + 1))
    assert [e["data"]["epoch"] for e in epochs] == [int(e["id"]) for e in epochs]
    assert statuses[-1] == "succeeded" and events[-1]["event"] == "status"
    assert "running" in statuses
    assert epochs[0]["data"]["val_loss"] > 0


def test_a_reconnect_with_last_event_id_resumes_after_that_epoch(api_server: httpx.Client, worker: Process) -> None:
    job_id = api_server.post("/v1/jobs", json=DIGITS_SPEC).json()["id"]
    wait_for(lambda: api_server.get(f"/v1/jobs/{job_id}").json()["epochs_completed"] >= 3, 60, "three epochs")

    events = read_events(api_server, f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "3"})

    assert next(e for e in events if e["event"] == "epoch")["id"] == "4"
    assert events[-1]["data"]["status"] == "succeeded"


def test_events_of_an_unknown_job_are_a_404(api_server: httpx.Client) -> None:
    assert api_server.get("/v1/jobs/nope/events").status_code == 404
