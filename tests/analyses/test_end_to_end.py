"""Analyses through the API, a real worker and PostgreSQL: the pruning report and the confusion matrix of every
finished job, a landscape asked for afterwards, another owner's 404, and an analysis that fails on its own."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.settings import Settings
from tests.fixtures import Process, bearer, create_key, finished_analysis, settings_env, tiny_spec, wait_for_job


def test_a_finished_job_has_its_pruning_report_and_confusion_matrix_and_a_landscape_on_request(
    api_server: httpx.Client, worker: Process, database_url: str
) -> None:
    job = wait_for_job(api_server, api_server.post("/v1/jobs", json=tiny_spec()).json()["id"])
    assert job["status"] == "succeeded"

    pruning = finished_analysis(api_server, job["id"], "pruning")
    assert pruning["status"] == "succeeded", pruning
    levels = pruning["result"]["levels"]
    assert [level["sparsity"] for level in levels] == [0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]
    assert levels[0]["weights"] == pruning["result"]["weights_total"] > levels[-1]["weights"]
    assert levels[0]["test"]["accuracy"] == job["test_metrics"]["accuracy"]  # unpruned: the job's own weights
    artifacts = {a["name"] for a in api_server.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]}
    assert {"weights-pruned.safetensors", "model.onnx"} <= artifacts

    confusion = finished_analysis(api_server, job["id"], "confusion")
    matrix = confusion["result"]["matrix"]
    assert len(matrix) == 3
    assert confusion["result"]["accuracy"] == pytest.approx(job["test_metrics"]["accuracy"], rel=1e-6)
    assert sum(map(sum, matrix)) == 30  # iris: 20 % of 150 rows are the test split

    asked = api_server.post(f"/v1/jobs/{job['id']}/analyses", json={"kind": "landscape", "options": {"points": 5}})
    assert asked.status_code == 202 and asked.json()["status"] == "queued"
    landscape = finished_analysis(api_server, job["id"], "landscape")
    assert landscape["status"] == "succeeded", landscape
    assert len(landscape["result"]["slices"]["1d"]["train"]) == 5
    assert landscape["result"]["top_eigenvalue"] > 0
    kinds = [a["kind"] for a in api_server.get(f"/v1/jobs/{job['id']}/analyses").json()["items"]]
    assert sorted(kinds) == ["confusion", "landscape", "onnx", "pruning"]

    bob = bearer(create_key(database_url, "bob"))
    assert api_server.get(f"/v1/jobs/{job['id']}/pruning", headers=bob).status_code == 404
    assert api_server.post(f"/v1/jobs/{job['id']}/analyses", json={"kind": "landscape"}, headers=bob).status_code == 404
    bad = api_server.post(f"/v1/jobs/{job['id']}/analyses", json={"kind": "landscape", "options": {"grid": 1}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "options.grid"


def test_an_analysis_that_fails_leaves_the_job_succeeded_and_says_why(
    api_server: httpx.Client, settings: Settings, tmp_path: Path
) -> None:
    hurried = settings.model_copy(update={"analysis_seconds": 1e-9})
    worker = Process(["worker", "--concurrency", "1"], settings_env(hurried), tmp_path / "hurried-worker.log")
    try:
        job = wait_for_job(api_server, api_server.post("/v1/jobs", json=tiny_spec()).json()["id"])
        pruning = finished_analysis(api_server, job["id"], "pruning")
    finally:
        worker.end()
    assert job["status"] == "succeeded"
    assert api_server.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"
    assert pruning["status"] == "failed" and "ANALYSIS_SECONDS" in pruning["error"]
    assert pruning["result"] is None
