"""Whole journeys through real processes: `steadyfit api` and `steadyfit worker` on PostgreSQL and Redis,
and `steadyfit serve` (SQLite, file-system queue). Nothing is mocked."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from celery import Celery
from safetensors.numpy import load

from core.artifacts import safetensors_metadata
from core.db.engine import Database
from core.db.models import Job
from core.queue import TRAIN_TASK, celery_config
from core.settings import Settings
from tests.fixtures import (
    DIGITS_SPEC,
    ROOT,
    Process,
    bearer,
    create_key,
    embedded_serve,
    free_port,
    settings_env,
    table_csv,
    tiny_spec,
    wait_for,
    wait_for_job,
)
from tests.readme_examples import readme_mismatches


def follow_metrics(http: httpx.Client, job_id: str, stall: float = 120) -> tuple[list[dict[str, Any]], set[str]]:
    """Poll /metrics?after_epoch= as a dashboard would, for as long as epochs or statuses keep coming; returns
    every epoch seen and the statuses seen."""
    epochs: list[dict[str, Any]] = []
    statuses: set[str] = set()
    seen_while_running: list[int] = []

    def poll() -> bool:
        after = epochs[-1]["epoch"] if epochs else 0
        page = http.get(f"/v1/jobs/{job_id}/metrics", params={"after_epoch": after}).json()
        epochs.extend(page["items"])
        statuses.add(page["status"])
        if page["status"] == "running" and page["items"]:
            seen_while_running.append(page["items"][-1]["epoch"])
        return page["status"] in ("succeeded", "failed", "cancelled")

    wait_for(poll, stall, f"job {job_id} to finish", interval=0.05, progress=lambda: (len(epochs), len(statuses)))
    poll()  # anything written between the last poll and the status change
    if seen_while_running:
        statuses.add("epochs-arrived-while-running")
    return epochs, statuses


def assert_trained_the_example(http: httpx.Client) -> str:
    response = http.post("/v1/jobs", json=DIGITS_SPEC)
    assert response.status_code == 202
    job_id = response.json()["id"]

    epochs, statuses = follow_metrics(http, job_id)
    job = http.get(f"/v1/jobs/{job_id}").json()

    assert job["status"] == "succeeded", job
    assert "epochs-arrived-while-running" in statuses
    assert [e["epoch"] for e in epochs] == list(range(1, job["epochs_completed"] + 1))
    assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "epoch_seconds"} <= set(epochs[0])
    if job["stop_reason"] == "early_stopping":
        assert job["epochs_completed"] == job["best_epoch"] + 5
    else:
        assert job["stop_reason"] == "max_epochs"
    best = epochs[job["best_epoch"] - 1]
    assert job["best_metrics"]["val_loss"] == best["val_loss"] == min(e["val_loss"] for e in epochs)
    assert job["test_metrics"]["accuracy"] > 0.9
    assert job["started_at"] <= job["finished_at"]
    assert job["attempts"] == 1
    assert readme_mismatches(job, epochs) == []  # seed 42: the README shows this very run
    return job_id


def test_the_example_job_trains_on_postgres_and_redis(api_server: httpx.Client, worker: Process) -> None:
    job_id = assert_trained_the_example(api_server)
    chart = api_server.get(f"/v1/jobs/{job_id}/charts/learning_curves").json()
    loss, marks = chart["layer"]
    assert len(loss["data"]["values"]) == 2 * api_server.get(f"/v1/jobs/{job_id}").json()["epochs_completed"]
    assert marks["data"]["values"][0]["mark"] == "best"
    png = api_server.get(f"/v1/jobs/{job_id}/charts/learning_curves", params={"format": "png"})
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")


def test_a_running_job_is_cancelled_and_keeps_its_epochs(api_server: httpx.Client, worker: Process) -> None:
    spec = tiny_spec(dataset={"name": "digits"}, training={"epochs": 100_000, "batch_size": 32, "seed": 3})
    job_id = api_server.post("/v1/jobs", json=spec).json()["id"]
    wait_for_job(api_server, job_id, epochs=2)

    assert api_server.post(f"/v1/jobs/{job_id}/cancel").status_code == 202

    def ended() -> Any:
        job = api_server.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    # A fixed time rather than a wait on progress: a job that ignored the cancel would go on training.
    job = wait_for(ended, 10, "the cancel to stop the job")
    epochs = api_server.get(f"/v1/jobs/{job_id}/metrics").json()["items"]

    assert (job["status"], job["stop_reason"]) == ("cancelled", "cancelled")
    assert len(epochs) == job["epochs_completed"] >= 2
    assert api_server.post(f"/v1/jobs/{job_id}/cancel").status_code == 409


def test_a_crash_in_training_fails_the_job_and_the_worker_goes_on(
    api_server: httpx.Client, worker: Process, settings: Settings
) -> None:
    # A row that bypassed the API's validation: the worker must fail it cleanly, not die or hang.
    broken_id = str(uuid.uuid4())
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        spec = {"dataset": {"name": "diabetes"}, "loss": "cross_entropy"}  # the API would answer 422
        session.add(Job(id=broken_id, owner="alice", status="queued", task="regression", spec=spec))
    database.dispose()
    producer = Celery(set_as_current=False)
    producer.conf.update(celery_config(settings))
    producer.send_task(TRAIN_TASK, args=[broken_id])

    failed = wait_for_job(api_server, broken_id)
    healthy_id = api_server.post("/v1/jobs", json=tiny_spec()).json()["id"]
    healthy = wait_for_job(api_server, healthy_id)

    assert failed["status"] == "failed"
    assert "cross_entropy" in failed["error"] and "Traceback" not in failed["error"]
    assert healthy["status"] == "succeeded"
    assert healthy["stop_reason"] == "max_epochs" and healthy["epochs_completed"] == 5


def test_the_embedded_service_trains_the_example(tmp_path: Path) -> None:
    with (
        embedded_serve(tmp_path / "embedded", tmp_path / "serve.log") as (serve, base_url),
        httpx.Client(base_url=base_url, timeout=10) as http,  # on loopback, no key is needed
    ):
        assert_trained_the_example(http)
        assert http.get("/v1/me").json()["owner"] == "local"
    assert serve.popen.returncode == 0, serve.log()
    assert "no API keys needed: only this machine reaches 127.0.0.1" in serve.log()
    # Known warnings that are no use to the person reading the log: Celery's to a worker run as root, and
    # kombu's about the file-system queue's host, once per submission.
    assert "SecurityWarning" not in serve.log() and "No hostname was supplied" not in serve.log()
    wait_for(lambda: not serve.group_alive(), 20, "the worker that `serve` started to exit")
    assert (tmp_path / "embedded" / "steadyfit.db").exists()


def test_the_api_process_never_imports_torch() -> None:
    probe = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from service.app import create_app\n"
        "with TestClient(create_app()) as client:\n"
        "    client.get('/openapi.json')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('clean')\n"
    )
    env = {"STEADYFIT_DATA_DIR": "/nonexistent-steadyfit-dir", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "clean", result.stderr


def test_an_uploaded_csv_trains_and_its_weights_warm_start_another_job(
    api_server: httpx.Client, worker: Process
) -> None:
    files = {"file": ("toy.csv", table_csv(rows=120), "text/csv")}
    dataset = api_server.post("/v1/datasets", files=files, data={"target": "label", "task": "classification"})
    assert dataset.status_code == 201, dataset.text
    spec = tiny_spec(dataset={"id": dataset.json()["id"]}, model={"hidden_layers": [8, 8]})
    first_id = api_server.post("/v1/jobs", json=spec).json()["id"]
    first = wait_for_job(api_server, first_id)
    assert first["status"] == "succeeded", first

    wait_for(lambda: api_server.get(f"/v1/jobs/{first_id}/pruning").status_code == 200, 30, "the pruning report")
    wait_for(lambda: api_server.get(f"/v1/jobs/{first_id}/pruning").json()["status"] == "succeeded", 60, "pruning")
    listing = api_server.get(f"/v1/jobs/{first_id}/artifacts").json()
    first_weights = api_server.get(f"/v1/jobs/{first_id}/artifacts/weights.safetensors").content
    card = json.loads(safetensors_metadata(first_weights)["steadyfit"])
    names = [a["name"] for a in listing["items"]]
    assert names == ["checkpoint.safetensors", "model.onnx", "weights-pruned.safetensors", "weights.safetensors"]
    assert card["feature_names"] == ["x1", "x2", "colour=blue", "colour=red"]
    assert card["class_names"] == ["no", "yes"] and len(card["feature_mean"]) == 4
    assert api_server.get(f"/v1/jobs/{first_id}/artifacts/..%2F..%2Fsteadyfit.db").status_code == 404

    warm = {**spec, "init_from": {"job_id": first_id, "freeze": [0]}}
    second_id = api_server.post("/v1/jobs", json=warm).json()["id"]
    second = wait_for_job(api_server, second_id)
    second_weights = api_server.get(f"/v1/jobs/{second_id}/artifacts/weights.safetensors").content
    before, after = load(first_weights), load(second_weights)

    assert second["status"] == "succeeded", second
    unchanged = {name for name in before if np.array_equal(before[name], after[name])}
    # The frozen first layer keeps the first job's weights exactly; the layers after it go on learning.
    assert unchanged and unchanged != set(before)


def test_a_worker_serves_its_training_metrics_to_prometheus(
    api_server: httpx.Client, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    args = ["worker", "--concurrency", "1", "--metrics-port", str(port)]
    worker = Process(args, settings_env(settings), tmp_path / "metrics-worker.log")
    try:
        job_id = api_server.post("/v1/jobs", json=tiny_spec()).json()["id"]
        assert wait_for_job(api_server, job_id)["status"] == "succeeded"
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        worker.end()

    assert "steadyfit_epoch_duration_seconds_count 5.0" in text
    assert "steadyfit_worker_epochs_total 5.0" in text
    assert 'steadyfit_worker_jobs_ended_total{status="succeeded"} 1.0' in text
    admin = bearer(create_key(settings.resolved_database_url, "ops", admin=True))  # with keys on, /metrics needs one
    fleet = api_server.get("/metrics", headers=admin).text
    assert "steadyfit_epochs_trained_total 5.0" in fleet
    assert 'steadyfit_jobs{status="succeeded"} 1.0' in fleet


def seconds_for_epochs(spec: dict[str, Any], epochs: int) -> float:
    """How long this machine takes, now, to load `spec`'s data and train it for `epochs` epochs. On one torch
    thread: this process's OpenMP threads spin while they wait for each other, which a loaded machine makes
    many times slower than a worker's (bench/contention.py)."""
    import torch

    from core.spec.job import JobSpec
    from workers.training.data import load_dataset
    from workers.training.engine import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.monotonic()
        job = JobSpec.model_validate({**spec, "training": {**spec["training"], "epochs": epochs}})
        data = load_dataset(job.dataset, job.training.seed)
        train(job.with_task(data.task), data)
        return time.monotonic() - started
    finally:
        torch.set_num_threads(threads)


def test_a_job_past_its_time_limit_stops_with_timeout_and_keeps_its_best_weights(
    api_server: httpx.Client, settings: Settings, tmp_path: Path
) -> None:
    endless = tiny_spec(training={"epochs": 100_000, "batch_size": 32, "seed": 1}, dataset={"name": "digits"})
    # Limits that leave time for three epochs at this machine's present pace (keeping weights needs one), so
    # a loaded machine passes as a quiet one does; at least the 1 s and 2 s a quiet machine is given.
    limit = max(1.0, seconds_for_epochs(endless, epochs=3))
    capped = settings.model_copy(update={"max_wall_seconds": 2 * limit})  # the server-wide cap
    worker = Process(["worker", "--concurrency", "1"], settings_env(capped), tmp_path / "capped-worker.log")
    try:
        by_spec = api_server.post(
            "/v1/jobs", json={**endless, "training": {**endless["training"], "max_wall_seconds": limit}}
        ).json()
        by_server = api_server.post("/v1/jobs", json=endless).json()
        jobs = [wait_for_job(api_server, job["id"]) for job in (by_spec, by_server)]
    finally:
        worker.end()

    for job in jobs:
        assert (job["status"], job["stop_reason"]) == ("succeeded", "timeout"), job
        assert 1 <= job["epochs_completed"] < 100_000
        assert job["test_metrics"]["accuracy"] > 0.5
        artifacts = api_server.get(f"/v1/jobs/{job['id']}/artifacts").json()["items"]
        assert "weights.safetensors" in {a["name"] for a in artifacts}
