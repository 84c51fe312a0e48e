"""The paths API through HTTP on PostgreSQL: points queued as jobs, errors that name `values`, the owner
check, a path's summary and CSV as the worker's results arrive; and a warm-started path trained end to end."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.fixtures import Process, bearer, create_key, finish_as_a_worker, path_body, sweep_body, wait_for


def test_a_path_queues_its_points_and_answers_the_best_and_the_one_se_strength(
    client: TestClient, database_url: str
) -> None:
    created = client.post("/v1/paths", json=path_body())
    assert created.status_code == 202, created.text
    path = created.json()
    assert created.headers["location"] == f"/v1/paths/{path['id']}"
    assert (path["status"], path["values"], path["warm_start"]) == ("running", [0.1, 0.01, 0.001], False)
    assert [(p["value"], p["status"]) for p in path["points"]] == [(0.1, "queued"), (0.01, "queued"), (0.001, "queued")]
    job = client.get(f"/v1/jobs/{path['points'][1]['job_id']}").json()
    assert job["spec"]["regularization"]["l2"] == 0.01  # each point is an ordinary job of the owner

    for p, (loss, se) in zip(path["points"], [(0.62, 0.02), (0.55, 0.02), (0.50, 0.06)], strict=True):
        finish_as_a_worker(database_url, p["job_id"], loss, se)
    read = client.get(f"/v1/paths/{path['id']}").json()
    assert read["best"]["value"] == 0.001 and read["one_se"]["value"] == 0.01  # 0.55 ≤ 0.50 + 0.06 < 0.62
    assert read["one_se_bound"] == 0.56
    first = read["points"][0]
    assert first["gap"] == pytest.approx(0.1)  # val_loss 0.62 - data_loss 0.52
    assert (first["weights_above_threshold"], first["sparsity"]) == (90, 0.25)

    table = list(csv.DictReader(io.StringIO(client.get(f"/v1/paths/{path['id']}", params={"format": "csv"}).text)))
    assert [(row["value"], row["chosen"]) for row in table] == [("0.1", ""), ("0.01", "one_se"), ("0.001", "best")]


def test_a_value_that_is_not_a_valid_spec_is_a_422_naming_values(client: TestClient) -> None:
    response = client.post("/v1/paths", json=path_body(parameter="model.dropout", values=[0.5, 1.5]))
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["values"]
    assert "1.5" in response.json()["errors"][0]["message"]


def test_paths_and_sweeps_keep_to_their_own_routes_and_owners(client: TestClient, database_url: str) -> None:
    path_id = client.post("/v1/paths", json=path_body()).json()["id"]
    sweep_id = client.post("/v1/sweeps", json=sweep_body()).json()["id"]
    assert [p["id"] for p in client.get("/v1/paths").json()["items"]] == [path_id]
    assert [s["id"] for s in client.get("/v1/sweeps").json()["items"]] == [sweep_id]
    assert client.get(f"/v1/paths/{sweep_id}").status_code == 404
    bob = bearer(create_key(database_url, "bob"))
    for method, route in [("GET", ""), ("POST", "/cancel"), ("GET", "/charts/path")]:
        assert client.request(method, f"/v1/paths/{path_id}{route}", headers=bob).status_code == 404
    assert client.get("/v1/paths", headers=bob).json()["items"] == []

    cancelled = client.post(f"/v1/paths/{path_id}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert {p["status"] for p in cancelled["points"]} == {"cancelled"}
    assert client.post(f"/v1/paths/{path_id}/cancel").status_code == 409


def test_the_list_of_paths_reads_the_trials_of_all_of_them_in_one_query(client: TestClient) -> None:
    first = client.post("/v1/paths", json=path_body()).json()
    second = client.post("/v1/paths", json=path_body(values=[0.5, 0.05])).json()
    app: Any = client.app
    statements: list[str] = []
    event.listen(app.state.database.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    listed = client.get("/v1/paths").json()["items"]
    assert [(p["id"], [point["value"] for point in p["points"]]) for p in listed] == [
        (second["id"], [0.5, 0.05]),
        (first["id"], [0.1, 0.01, 0.001]),
    ]
    assert len([statement for statement in statements if "FROM jobs" in statement]) == 1


def test_a_warm_started_path_trains_each_point_from_the_last_and_draws_its_chart(
    api_server: httpx.Client, worker: Process
) -> None:
    body = path_body(values=[0.1, 0.001], warm_start=True)
    path = api_server.post("/v1/paths", json=body).json()
    assert len(path["points"]) == 1  # one at a time: the next waits for this one's weights

    def finished() -> dict[str, Any] | None:
        read: dict[str, Any] = api_server.get(f"/v1/paths/{path['id']}").json()
        return read if read["status"] != "running" else None

    progress = lambda: api_server.get(f"/v1/paths/{path['id']}").text  # noqa: E731
    done = wait_for(finished, 120, "the path to finish", progress=progress)
    assert done["status"] == "succeeded", done
    first, second = done["points"]
    assert (first["value"], second["value"]) == (0.1, 0.001)
    spec = api_server.get(f"/v1/jobs/{second['job_id']}").json()["spec"]
    assert spec["init_from"]["job_id"] == first["job_id"]
    assert api_server.get(f"/v1/jobs/{first['job_id']}").json()["spec"]["init_from"] is None
    assert done["best"] is not None and done["one_se"] is not None
    assert all(p["val_loss_se"] > 0 for p in done["points"])
    png = api_server.get(f"/v1/paths/{path['id']}/charts/path", params={"format": "png"})
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
