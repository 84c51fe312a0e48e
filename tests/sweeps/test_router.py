"""The sweeps API through HTTP, on a real PostgreSQL database and a real Redis broker (no worker)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.fixtures import REDIS_URL, sweep_body, tiny_spec


def create(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/sweeps/{response.json()['id']}"
    created: dict[str, Any] = response.json()
    return created


def test_the_issue_example_is_accepted_and_its_first_trials_are_queued_as_jobs(
    client: TestClient, settings: Settings
) -> None:
    sweep = create(client, sweep_body())
    trials = client.get("/v1/jobs", params={"sweep_id": sweep["id"]}).json()["items"]

    assert sweep["status"] == "running" and sweep["task"] == "classification"
    assert sweep["trials"] == {**dict.fromkeys(sweep["trials"], 0), "total": 4, "queued": 4}
    assert sweep["best_trial"] is None
    assert sweep["parameters"]["model.dropout"] == {"values": [0.0, 0.2, 0.5]}  # only the kind given
    assert sorted(trial["trial_number"] for trial in trials) == [0, 1, 2, 3]  # max_parallel at once
    assert redis.Redis.from_url(REDIS_URL).llen(settings.queue_name) == 4
    for trial in trials:
        params = trial["trial_params"]
        assert set(params) == {"model.dropout", "regularization.l2", "optimizer.lr"}
        assert trial["spec"]["model"]["dropout"] == params["model.dropout"]
        assert trial["spec"]["optimizer"]["lr"] == params["optimizer.lr"]
        assert 1e-6 <= trial["spec"]["regularization"]["l2"] == params["regularization.l2"] <= 1e-2
        assert trial["spec"]["model"]["hidden_layers"] == [8]  # the rest is the base spec
    assert client.get("/v1/jobs", params={"sweep_id": "another"}).json()["items"] == []


def test_a_sweeps_trials_take_its_priority_up_to_its_owners_limit(client: TestClient) -> None:
    base = tiny_spec(priority="normal")
    over = client.post("/v1/sweeps", json=sweep_body(priority="high", base=base))
    sweep = create(client, sweep_body(priority="low", base=base))
    trials = client.get("/v1/jobs", params={"sweep_id": sweep["id"]}).json()["items"]

    assert over.status_code == 422 and over.json()["errors"][0]["field"] == "priority"
    assert over.json()["detail"] == "priority: `high` is over your limit `max_priority` of `normal`"
    assert sweep["priority"] == "low" and sweep["base"]["priority"] == "low"
    assert [(trial["priority"], trial["spec"]["priority"]) for trial in trials] == [("low", "low")] * 4


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"parameters": {"model.dropuot": {"values": [0.1]}}}, "parameters.model.dropuot", "no `model.dropuot`"),
        ({"parameters": {"model.dropout": {"values": [0.0, 1.5]}}}, "parameters.model.dropout", "1.5: Input"),
        ({"parameters": {"optimizer.lr": {"log_uniform": [1e-4, 20]}}}, "parameters.optimizer.lr", "20: Input"),
        ({"parameters": {"training.epochs": {"uniform": [2, 9]}}}, "parameters.training.epochs", "valid integer"),
        (
            {"parameters": {"early_stopping.patience": {"int_uniform": [1, 5]}}},
            "parameters.early_stopping.patience",
            "null",
        ),
        ({"parameters": {"loss.name": {"values": ["cross_entropy", "mse"]}}}, "parameters.loss.name", "does not fit"),
        ({"parameters": {"optimizer.lr": {"log_uniform": [0, 1]}}}, "parameters.optimizer.lr", "low > 0"),
        (
            {"parameters": {"optimizer.lr": {"uniform": [0.1, 0.2], "values": [0.1]}}},
            "parameters.optimizer.lr",
            "exactly one",
        ),
        ({"algorithm": "grid"}, "parameters.regularization.l2", "grid search needs `values`"),
        ({"max_trials": None}, "max_trials", "tpe search needs it"),
        ({"objective": {"metric": "val_r2"}}, "objective.metric", "not a metric of a classification job"),
        ({"pruner": {"name": "asha", "min_epochs": 50}}, "pruner.min_epochs", "more than the 9 epochs"),
        (
            {"parameters": {"model": {"values": [{}]}, "model.dropout": {"values": [0.1]}}},
            "parameters.model.dropout",
            "overlaps",
        ),
        ({"base": tiny_spec(dataset={"id": "nope"})}, "base.dataset.id", "no uploaded data set"),
    ],
)
def test_an_invalid_sweep_is_a_422_naming_the_parameter(
    client: TestClient, change: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/v1/sweeps", json=sweep_body(**change))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert field in errors and words in errors[field], errors
    assert client.get("/v1/sweeps").json()["items"] == []


def test_a_grid_point_that_is_not_a_valid_spec_is_a_422(client: TestClient) -> None:
    splits = {"values": [0.2, 0.45]}  # each valid beside the base's 0.2; 0.45 + 0.45 is not
    body = sweep_body(
        algorithm="grid",
        max_trials=None,
        parameters={"dataset.validation_split": splits, "dataset.test_split": splits},
    )
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422
    assert "validation_split + test_split" in response.json()["detail"]


def test_cancelling_a_sweep_cancels_its_queued_trials_and_only_once(client: TestClient) -> None:
    sweep = create(client, sweep_body())

    cancelled = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    again = client.post(f"/v1/sweeps/{sweep['id']}/cancel")
    trials = client.get(f"/v1/sweeps/{sweep['id']}/trials").json()["items"]

    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"] is not None
    assert cancelled.json()["trials"]["cancelled"] == 4
    assert [(t["status"], t["stop_reason"]) for t in trials] == [("cancelled", "cancelled")] * 4
    assert again.status_code == 409 and again.json()["detail"] == f"sweep `{sweep['id']}` is already cancelled"


def test_sweeps_are_listed_newest_first_a_page_at_a_time(client: TestClient) -> None:
    ids = [create(client, sweep_body(name=f"sweep-{n}"))["id"] for n in range(3)]
    client.post(f"/v1/sweeps/{ids[0]}/cancel")

    first = client.get("/v1/sweeps", params={"limit": 2}).json()
    second = client.get("/v1/sweeps", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    cancelled = client.get("/v1/sweeps", params={"status": "cancelled"}).json()

    assert [s["id"] for s in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert [s["id"] for s in cancelled["items"]] == [ids[0]]
    assert client.get("/v1/sweeps", params={"cursor": "garbage!"}).status_code == 422


def test_an_unknown_sweep_is_a_404_everywhere(client: TestClient) -> None:
    for method, path in [("GET", ""), ("GET", "/trials"), ("GET", "/importance"), ("POST", "/cancel")]:
        response = client.request(method, f"/v1/sweeps/nope{path}")
        assert response.status_code == 404
        assert response.json()["detail"] == "no sweep `nope`"


def test_openapi_documents_the_sweep_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operations = {op["operationId"]: op for path in schema["paths"].values() for op in path.values()}
    expected = {"create_sweep", "list_sweeps", "get_sweep", "list_sweep_trials", "get_sweep_importance", "cancel_sweep"}
    assert expected <= set(operations)
    for name in ("ParameterSpec-Input", "ParameterRead"):
        parameter = schema["components"]["schemas"][name]
        assert set(parameter["properties"]) == {"values", "uniform", "log_uniform", "int_uniform"}
