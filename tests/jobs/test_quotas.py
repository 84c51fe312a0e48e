"""Job quotas (429) and spec limits (422), and the torch-free parameter count they use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job
from core.jobs.quotas import data_shape
from core.settings import Settings
from core.spec.architecture import parameter_count, tensor_shapes
from core.spec.job import JobSpec
from core.tenants import limits
from tests.fixtures import (
    Process,
    bearer,
    create_key,
    free_port,
    settings_env,
    sweep_body,
    table_csv,
    tiny_spec,
    wait_until_healthy,
)
from workers.training.model import build_model


def test_a_full_queue_is_a_429_naming_the_limit_with_retry_after(client_with: Callable[..., TestClient]) -> None:
    with client_with(max_queued_jobs=2, retry_after_seconds=7) as client:
        for _ in range(2):
            assert client.post("/v1/jobs", json=tiny_spec()).status_code == 202
        response = client.post("/v1/jobs", json=tiny_spec())
        sweep = client.post("/v1/sweeps", json=sweep_body())

    assert response.status_code == sweep.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["content-type"] == "application/problem+json"
    assert "`max_queued_jobs` is 2" in response.json()["detail"]


def test_running_jobs_at_their_limit_is_a_429(client_with: Callable[..., TestClient]) -> None:
    with client_with(max_running_jobs=1) as client:
        job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
        database = client.app.state.database  # type: ignore[attr-defined]
        with database.session() as session:
            session.execute(update(Job).where(Job.id == job_id).values(status="running"))
        response = client.post("/v1/jobs", json=tiny_spec())
    assert response.status_code == 429
    assert "`max_running_jobs` is 1" in response.json()["detail"]


def test_too_many_epochs_is_a_422_naming_the_field_and_limit(client_with: Callable[..., TestClient]) -> None:
    with client_with(max_epochs=10) as client:
        response = client.post("/v1/jobs", json=tiny_spec(training={"epochs": 11}))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "training.epochs"
    assert "`max_epochs` of 10" in response.json()["detail"]


def test_a_model_over_the_size_limit_is_a_422_naming_model(client_with: Callable[..., TestClient]) -> None:
    # iris: 4 features, 3 classes; hidden [8] has 4·8 + 8 + 8·3 + 3 = 67 parameters, [9] has 75.
    with client_with(max_model_parameters=67) as client:
        fits = client.post("/v1/jobs", json=tiny_spec(model={"hidden_layers": [8]}))
        too_big = client.post("/v1/jobs", json=tiny_spec(model={"hidden_layers": [9]}))
        sweep = client.post("/v1/sweeps", json=sweep_body(base=tiny_spec(model={"hidden_layers": [9]})))
    assert fits.status_code == 202
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["field"] == "model"
    assert "75 parameters" in too_big.json()["detail"]
    assert "`max_model_parameters` of 67" in too_big.json()["detail"]
    assert sweep.status_code == 422
    assert sweep.json()["errors"][0]["field"] == "base.model"


def test_an_uploaded_data_set_is_sized_from_its_stored_features(client_with: Callable[..., TestClient]) -> None:
    with client_with(max_model_parameters=100) as client:
        dataset = client.post(
            "/v1/datasets",
            files={"file": ("table.csv", table_csv(), "text/csv")},
            data={"target": "label", "task": "classification"},
        ).json()
        response = client.post("/v1/jobs", json=tiny_spec(dataset={"id": dataset["id"]}, model={"hidden_layers": [30]}))
    features = len(dataset["feature_names"])
    expected = features * 30 + 30 + 30 * 2 + 2
    assert response.status_code == 422
    assert f"{expected} parameters" in response.json()["detail"]


@pytest.mark.parametrize(
    "spec",
    [
        tiny_spec(),
        tiny_spec(dataset={"name": "digits"}, model={"hidden_layers": [32, 16], "batch_norm": True}),
        tiny_spec(
            dataset={"name": "digits"},
            model={
                "type": "cnn",
                "conv_layers": [{"filters": 4, "kernel_size": 3, "pool": 2}, {"filters": 6, "kernel_size": 5}],
                "hidden_layers": [16],
                "batch_norm": "after_activation",
            },
        ),
        tiny_spec(
            dataset={"name": "shapes", "n_samples": 60},
            model={
                "type": "cnn",
                "conv_layers": [
                    {"filters": 4, "kernel_size": 3, "stride": 2, "residual": True},
                    {"filters": 4, "kernel_size": 3, "residual": True, "pool": 2},
                    {"filters": 5, "kernel_size": 2, "padding": "valid"},
                ],
                "global_pool": True,
                "batch_norm": True,
                "dropout_type": "spatial",
                "dropout": 0.2,
            },
        ),
        tiny_spec(dataset={"name": "breast_cancer"}, loss="binary_cross_entropy"),
        tiny_spec(dataset={"name": "diabetes"}, loss="mse", model={"hidden_layers": [5, 7]}),
        tiny_spec(dataset={"name": "classification", "n_features": 12, "n_classes": 5}),
        tiny_spec(dataset={"name": "moons"}, model={"hidden_layers": [3, 3, 3]}),
        tiny_spec(dataset={"name": "regression"}, loss="huber"),
    ],
)
def test_the_tensors_and_parameter_count_are_what_the_engine_builds(spec: dict[str, Any]) -> None:
    parsed = JobSpec.model_validate(spec)
    task = parsed.dataset.task
    assert task is not None
    parsed = parsed.with_task(task)
    shape = data_shape(parsed)
    input_shape, outputs = shape.input_shape, shape.outputs(parsed)
    model = build_model(parsed.model, input_shape, outputs)
    built = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert parameter_count(parsed.model, input_shape, outputs) == built
    state = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    assert tensor_shapes(parsed.model, input_shape, outputs) == state


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_fifty_concurrent_submissions_queue_exactly_the_quota(backend: str, settings: Settings, tmp_path: Path) -> None:
    """Through a real `steadyfit api`: the count of an owner's jobs and the insert of a new one are one step
    (the owner's row lock on PostgreSQL, the write lock on SQLite), so no two submissions both see room."""
    quota, senders = 20, 50
    if backend == "sqlite":
        settings = Settings(
            data_dir=tmp_path / "embedded", broker_url=settings.broker_url, queue_name=settings.queue_name
        )
        upgrade(settings.resolved_database_url)
    key = create_key(settings.resolved_database_url, "carol")
    database = Database(settings.resolved_database_url, pooled=False)
    with database.session() as session:
        limits.set_overrides(session, "carol", {"max_queued_jobs": quota})
    port = free_port()
    api = Process(["api", "--port", str(port)], settings_env(settings), tmp_path / "api.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", api)
        start = threading.Barrier(senders)

        def submit(_: int) -> int:
            start.wait()
            url = f"http://127.0.0.1:{port}/v1/jobs"
            return httpx.post(url, json=tiny_spec(), headers=bearer(key), timeout=120).status_code

        with ThreadPoolExecutor(senders) as pool:
            statuses = list(pool.map(submit, range(senders)))
    finally:
        api.stop()
    with database.session() as session:
        stored = session.scalar(select(func.count()).where(Job.owner == "carol", Job.status == "queued"))
    database.dispose()
    assert sorted(statuses) == [202] * quota + [429] * (senders - quota)
    assert stored == quota
