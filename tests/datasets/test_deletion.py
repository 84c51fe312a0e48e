"""Deleting a data set that a queued job refers to, through a real API and worker on PostgreSQL and Redis."""

from __future__ import annotations

from pathlib import Path

import httpx

from core.settings import Settings
from tests.fixtures import Process, settings_env, table_csv, tiny_spec, wait_for_job


def test_a_job_queued_on_a_deleted_data_set_fails_saying_so(
    api_server: httpx.Client, settings: Settings, tmp_path: Path
) -> None:
    files = {"file": ("toy.csv", table_csv(rows=120), "text/csv")}
    dataset = api_server.post("/v1/datasets", files=files, data={"target": "label", "task": "classification"}).json()
    job_id = api_server.post("/v1/jobs", json=tiny_spec(dataset={"id": dataset["id"]})).json()["id"]

    assert api_server.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    worker = Process(["worker", "--concurrency", "1"], settings_env(settings), tmp_path / "worker.log")
    try:
        job = wait_for_job(api_server, job_id, stall=90)
    finally:
        worker.end()

    assert job["status"] == "failed"
    assert f"data set {dataset['id']} no longer exists" in job["error"]
