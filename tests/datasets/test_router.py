"""The datasets API through HTTP on real PostgreSQL: uploads, limits, and jobs that refer to them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.artifacts import artifact_store
from core.db.engine import Database
from core.settings import Settings
from core.tenants import limits
from service.datasets.parsing import Caps
from service.datasets.reading import Table, read_table
from steadyfit.client import ApiError, Client
from tests.fixtures import bearer, create_key, table_csv, tiny_spec


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


def test_a_text_column_with_too_many_distinct_values_is_a_422_naming_it(client: TestClient) -> None:
    rows = [f"{i % 7},user-{i:06d},{'yes' if i % 3 else 'no'}" for i in range(3000)]
    data = ("x1,user_id,label\n" + "\n".join(rows) + "\n").encode()

    response = upload(client, data)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "`user_id`" in detail and "1000" in detail and "hash" in detail
    assert client.get("/v1/datasets").json()["items"] == []


def test_too_many_columns_is_a_422(client_with: Callable[..., TestClient]) -> None:
    with client_with(max_upload_columns=3) as client:
        response = upload(client, table_csv())

    assert response.status_code == 422
    assert response.json()["detail"] == "4 columns, over the limit `max_upload_columns` of 3"


def test_the_upload_is_parsed_from_a_file_under_the_data_directory_that_is_removed_after(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = table_csv()
    seen: list[tuple[Path, bytes]] = []

    def recording_read_table(path: Path, caps: Caps) -> Table:
        seen.append((path, path.read_bytes()))
        return read_table(path, caps)

    monkeypatch.setattr("service.datasets.reading.read_table", recording_read_table)
    assert upload(client, data).status_code == 201

    [(path, contents)] = seen
    assert path.parent == settings.data_dir / "uploads" and contents == data
    assert list(path.parent.iterdir()) == []


def test_a_data_set_is_deleted_with_its_arrays_by_its_owner_only(
    client: TestClient, settings: Settings, database_url: str
) -> None:
    dataset = upload(client, table_csv()).json()
    store = artifact_store(settings)
    bob = bearer(create_key(database_url, "bob"))

    assert client.delete(f"/v1/datasets/{dataset['id']}", headers=bob).status_code == 404
    assert store.list(f"datasets/{dataset['id']}/") != []
    deleted = client.delete(f"/v1/datasets/{dataset['id']}")

    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 404
    assert client.get("/v1/datasets").json()["items"] == []
    assert store.list(f"datasets/{dataset['id']}/") == []
    assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 404
    job = client.post("/v1/jobs", json=tiny_spec(dataset={"id": dataset["id"]}))
    assert job.status_code == 422 and job.json()["errors"][0]["field"] == "dataset.id"


def test_uploads_past_the_storage_quota_are_a_413_until_a_data_set_is_deleted(
    client_with: Callable[..., TestClient],
) -> None:
    # 60 rows of 4 float32 features and an int64 class: 60 * 24 = 1440 bytes of arrays, and a header.
    with client_with(max_storage_bytes=4000) as client:
        first = upload(client, table_csv()).json()
        second = upload(client, table_csv()).json()
        refused = upload(client, table_csv())
        limits = client.get("/v1/me").json()["limits"]
        assert client.delete(f"/v1/datasets/{first['id']}").status_code == 204
        third = upload(client, table_csv())

    assert 1440 < first["stored_bytes"] == second["stored_bytes"] < 2000
    assert refused.status_code == 413
    used, size = 2 * first["stored_bytes"], first["stored_bytes"]
    assert refused.json()["detail"] == (
        f"stored, this data set takes {size} bytes; with the {used} of your other data sets that is over the "
        "limit `max_storage_bytes` of 4000. Delete some (DELETE /v1/datasets/{id}) or ask for more"
    )
    assert limits["max_storage_bytes"] == 4000
    assert third.status_code == 201


def test_an_owners_storage_quota_past_32_bits_is_kept_and_shown(client: TestClient, settings: Settings) -> None:
    database = Database(settings.resolved_database_url, pooled=False)
    with database.session() as session:
        limits.set_overrides(session, "alice", {"max_storage_bytes": 5 * 2**30})
    database.dispose()

    assert client.get("/v1/me").json()["limits"]["max_storage_bytes"] == 5 * 2**30


def test_the_python_client_uploads_and_deletes(client: TestClient, tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    path.write_bytes(table_csv())
    sf = Client("http://testserver")
    sf.http = client

    dataset = sf.upload_dataset(path, target="label", task="classification")
    assert [d.id for d in sf.datasets().items] == [dataset.id]
    sf.delete_dataset(dataset.id)

    assert sf.datasets().items == []
    with pytest.raises(ApiError) as caught:
        sf.delete_dataset(dataset.id)
    assert caught.value.status == 404
