"""Models through a real API, worker and PostgreSQL: a job saved as a model answers predictions as the job
does, and its weights, saved or uploaded, warm-start a job that is ahead of one trained from scratch."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.fixtures import finished_analysis, tiny_spec, wait_for_job

MLP = {"hidden_layers": [32]}


def trained(http: httpx.Client, **sections: Any) -> dict[str, Any]:
    spec = tiny_spec(dataset={"name": "digits"}, model=MLP, **sections)
    job: dict[str, Any] = wait_for_job(http, http.post("/v1/jobs", json=spec).json()["id"])
    assert job["status"] == "succeeded", job
    return job


def first_epoch_accuracy(http: httpx.Client, job_id: str) -> float:
    return float(http.get(f"/v1/jobs/{job_id}/metrics").json()["items"][0]["val_accuracy"])


def test_a_saved_or_uploaded_model_predicts_and_warm_starts_a_job(api_server: httpx.Client, worker: Any) -> None:
    source = trained(api_server, training={"epochs": 8, "batch_size": 32, "seed": 1})
    assert finished_analysis(api_server, source["id"], "onnx")["status"] == "succeeded"
    saved = api_server.post(f"/v1/jobs/{source['id']}/model", json={"name": "digits start"})
    assert saved.status_code == 201, saved.text
    model = saved.json()
    assert model["source"] == "job" and model["predictable"] and model["class_names"] == [str(d) for d in range(10)]

    rows = [[float(v % 17) for v in range(64)], [float((3 * v) % 16) for v in range(64)]]
    by_job = api_server.post(f"/v1/jobs/{source['id']}/predict", json={"rows": rows}).json()
    by_model = api_server.post(f"/v1/models/{model['id']}/predict", json={"rows": rows}).json()
    assert by_model["probabilities"] == by_job["probabilities"] and by_model["source_id"] == model["id"]

    weights = api_server.get(f"/v1/jobs/{source['id']}/artifacts/weights.safetensors").content
    uploaded = api_server.post(
        "/v1/models", files={"file": ("w.safetensors", weights)}, data={"model": json.dumps(MLP)}
    )
    assert uploaded.status_code == 201, uploaded.text

    one_epoch = {"epochs": 1, "batch_size": 32, "seed": 2}
    slow = {"name": "adam", "lr": 0.001}  # one epoch from scratch stays well short of the source's accuracy
    scratch = trained(api_server, training=one_epoch, optimizer=slow)
    for start in (model["id"], uploaded.json()["id"]):
        warm = trained(api_server, training=one_epoch, optimizer=slow, init_from={"model_id": start})
        assert first_epoch_accuracy(api_server, warm["id"]) > first_epoch_accuracy(api_server, scratch["id"]) + 0.1
