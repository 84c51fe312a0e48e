"""The datasets API through HTTP on real PostgreSQL: uploads, limits, and jobs that refer to them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures import table_csv, tiny_spec


def upload(client: TestClient, data: bytes, **form: str) -> Any:
    fields = {"target": "label", "task": "classification", **form}
    return client.post("/v1/datasets", files={"file": ("table.csv", data, "text/csv")}, data=fields)


def test_an_upload_is_described_and_listed(client: TestClient) -> None:
    data = table_csv()
    response = upload(client, data, name="toy")

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert response.headers["location"] == f"/v1/datasets/{dataset['id']}"
    assert dataset["rows"] == 60
    assert dataset["columns"] == ["x1", "x2", "colour", "label"]
    assert dataset["feature_names"] == ["x1", "x2", "colour=blue", "colour=red"]
    assert dataset["class_counts"] == {"no": 20, "yes": 40}
    assert dataset["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert dataset["format"] == "csv"
    assert client.get(f"/v1/datasets/{dataset['id']}").json() == dataset
    assert [d["id"] for d in client.get("/v1/datasets").json()["items"]] == [dataset["id"]]


def test_a_broken_csv_is_a_400_that_says_where(client: TestClient) -> None:
    broken = table_csv().replace(b"3,9,blue,no", b"3,9,blue,no,oops")
    response = upload(client, broken)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "line 5: 5 fields, the header has 4"


def test_missing_values_are_a_422_unless_imputed(client: TestClient) -> None:
    holey = table_csv().replace(b"\n3,9,", b"\n,9,")
    assert upload(client, holey).status_code == 422
    assert "missing values" in upload(client, holey).json()["detail"]
    assert upload(client, holey, impute="mean").status_code == 201


def test_unknown_ids_are_404s_and_bad_form_fields_422s(client: TestClient) -> None:
    assert client.get("/v1/datasets/nope").status_code == 404
    response = upload(client, table_csv(), task="ranking")
    assert response.status_code == 422
    assert "task" in {e["field"] for e in response.json()["errors"]}


@pytest.fixture
def small_limit_client(client_with: Callable[..., TestClient]) -> Iterator[TestClient]:
    with client_with(max_upload_bytes=1000) as client:
        yield client


def test_an_upload_over_the_limit_is_a_413(small_limit_client: TestClient) -> None:
    response = upload(small_limit_client, table_csv(rows=200))
    assert response.status_code == 413
    assert response.json()["detail"] == "the upload is over the limit of 1000 bytes"
    assert upload(small_limit_client, table_csv(rows=10)).status_code == 201


def test_a_job_refers_to_an_upload_by_id_and_takes_its_task(client: TestClient) -> None:
    dataset = upload(client, table_csv(), task="regression", target="x2").json()

    job = client.post("/v1/jobs", json=tiny_spec(dataset={"id": dataset["id"]}))
    wrong_loss = client.post("/v1/jobs", json=tiny_spec(dataset={"id": dataset["id"]}, loss="cross_entropy"))
    missing = client.post("/v1/jobs", json=tiny_spec(dataset={"id": "no-such-dataset"}))

    assert job.status_code == 202 and job.json()["task"] == "regression"
    assert job.json()["spec"]["loss"]["name"] == "mse"
    assert wrong_loss.status_code == 422 and wrong_loss.json()["errors"][0]["field"] == "loss"
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "dataset.id"
