"""API keys and tenants: every /v1 route needs a key, and one owner never sees another's jobs, data sets,
sweeps, artifacts or events (404, not 403: they do not exist for them); an admin sees everyone's."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core.artifacts import artifact_store
from core.db.engine import Database
from core.db.models import Job
from core.jobs import repository as jobs_repository
from core.queue import TaskQueue
from core.settings import Settings
from core.spec.job import JobSpec
from core.tenants import limits
from service.app import create_app
from tests.fixtures import (
    ROOT,
    Process,
    bearer,
    create_key,
    free_port,
    settings_env,
    sweep_body,
    table_cells,
    tiny_spec,
    upload_table,
    wait_for,
)


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    """The app in process, sending no key of its own; revocations take effect at once."""
    with TestClient(create_app(settings.model_copy(update={"key_cache_seconds": 0}))) as client:
        yield client


@pytest.fixture
def owners(database_url: str) -> dict[str, dict[str, str]]:
    """The headers of alice, bob and an admin."""
    return {
        "alice": bearer(create_key(database_url, "alice")),
        "bob": bearer(create_key(database_url, "bob")),
        "admin": bearer(create_key(database_url, "root", admin=True)),
    }


def v1_routes() -> list[tuple[str, str]]:
    """Every /v1 operation the API documents."""
    paths = create_app(Settings()).openapi()["paths"]
    return sorted((method.upper(), path) for path, item in paths.items() if path.startswith("/v1") for method in item)


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    url = path.replace("{job_id}", "some-id").replace("{sweep_id}", "some-id").replace("{dataset_id}", "some-id")
    url = url.replace("{key_id}", "some-id").replace("{name}", "weights.safetensors")
    return client.request(method, url, headers=headers or {})


def test_there_are_v1_routes_to_check() -> None:
    assert len(v1_routes()) >= 18


@pytest.mark.parametrize(("method", "path"), v1_routes())
def test_every_v1_route_is_a_401_without_a_key_and_with_an_unknown_one(
    app_client: TestClient, method: str, path: str
) -> None:
    for headers in ({}, bearer("sf_made-up"), {"Authorization": "Basic YWxpY2U6cGFzcw=="}):
        response = call(app_client, method, path, headers)
        assert response.status_code == 401, (method, path, headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] in (
            "unknown API key",
            "this API needs a key: send `Authorization: Bearer <key>`",
        )


def test_a_revoked_key_is_a_403_and_health_needs_no_key(app_client: TestClient, owners: Any) -> None:
    assert app_client.get("/v1/jobs", headers=owners["alice"]).status_code == 200
    key_id = next(
        k["id"] for k in app_client.get("/v1/keys", headers=owners["admin"]).json()["items"] if k["owner"] == "alice"
    )
    assert app_client.post(f"/v1/keys/{key_id}/revoke", headers=owners["admin"]).json()["revoked_at"] is not None

    response = app_client.get("/v1/jobs", headers=owners["alice"])
    assert response.status_code == 403
    assert response.json()["detail"] == "this API key was revoked"
    assert app_client.get("/healthz").status_code == 200


def test_only_an_admin_manages_keys_and_a_new_key_works_at_once(app_client: TestClient, owners: Any) -> None:
    assert app_client.get("/v1/keys", headers=owners["alice"]).status_code == 403
    assert app_client.post("/v1/keys", json={"owner": "carol"}, headers=owners["alice"]).status_code == 403

    created = app_client.post("/v1/keys", json={"owner": "carol"}, headers=owners["admin"])
    assert created.status_code == 201
    secret = created.json()["key"]
    me = app_client.get("/v1/me", headers=bearer(secret)).json()
    assert (me["owner"], me["admin"]) == ("carol", False)
    listed = app_client.get("/v1/keys", headers=owners["admin"]).json()["items"]
    assert {k["owner"] for k in listed} == {"alice", "bob", "root", "carol"}
    assert all("key" not in k and secret.startswith(k["shown"]) is (k["owner"] == "carol") for k in listed)
    assert app_client.post("/v1/keys", json={"owner": "no spaces"}, headers=owners["admin"]).status_code == 422


def alice_owns_everything(client: TestClient, alice: dict[str, str], settings: Settings) -> dict[str, str]:
    """Alice's data set, a job on it with an artifact, and a sweep: their ids."""
    dataset_id = upload_table(client, alice)
    job = client.post("/v1/jobs", json=tiny_spec(dataset={"id": dataset_id}), headers=alice)
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    artifact_store(settings).put(f"jobs/{job_id}/weights.safetensors", b"weights")
    sweep = client.post("/v1/sweeps", json=sweep_body(max_trials=2, max_parallel=2), headers=alice)
    assert sweep.status_code == 202, sweep.text
    return {"dataset": dataset_id, "job": job_id, "sweep": sweep.json()["id"]}


def test_another_owner_gets_404_for_each_route_and_sees_nothing_in_lists(
    app_client: TestClient, owners: Any, settings: Settings
) -> None:
    alice, bob, admin = owners["alice"], owners["bob"], owners["admin"]
    ids = alice_owns_everything(app_client, alice, settings)
    job, dataset, sweep = ids["job"], ids["dataset"], ids["sweep"]
    routes = [
        ("GET", f"/v1/jobs/{job}"),
        ("GET", f"/v1/jobs/{job}/metrics"),
        ("GET", f"/v1/jobs/{job}/metrics?format=csv"),
        ("GET", f"/v1/jobs/{job}/events"),
        ("GET", f"/v1/jobs/{job}/artifacts"),
        ("GET", f"/v1/jobs/{job}/artifacts/weights.safetensors"),
        ("GET", f"/v1/datasets/{dataset}"),
        ("GET", f"/v1/sweeps/{sweep}"),
        ("GET", f"/v1/sweeps/{sweep}/trials"),
    ]
    for method, path in routes:
        assert app_client.request(method, path, headers=bob).status_code == 404, path
        if not path.endswith("/events"):  # a stream of a job still queued would never end
            assert app_client.request(method, path, headers=alice).status_code == 200, path
            assert app_client.request(method, path, headers=admin).status_code == 200, path
    assert app_client.post(f"/v1/jobs/{job}/cancel", headers=bob).status_code == 404
    assert app_client.post(f"/v1/sweeps/{sweep}/cancel", headers=bob).status_code == 404
    assert app_client.get(f"/v1/jobs/{job}", headers=alice).json()["status"] == "queued"  # bob cancelled nothing

    for path in ("/v1/jobs", f"/v1/jobs?sweep_id={sweep}", "/v1/datasets", "/v1/sweeps"):
        assert app_client.get(path, headers=bob).json()["items"] == [], path
    alice_jobs = app_client.get("/v1/jobs", headers=alice).json()["items"]
    assert len(alice_jobs) == 3 and {j["owner"] for j in alice_jobs} == {"alice"}  # her job and 2 trials

    # Bob's own job, and what only alice may refer to.
    assert app_client.post("/v1/jobs", json=tiny_spec(), headers=bob).status_code == 202
    on_her_data = app_client.post("/v1/jobs", json=tiny_spec(dataset={"id": dataset}), headers=bob)
    assert on_her_data.status_code == 422 and on_her_data.json()["errors"][0]["field"] == "dataset.id"
    from_her_job = app_client.post("/v1/jobs", json=tiny_spec(init_from={"job_id": job}), headers=bob)
    assert from_her_job.status_code == 422 and from_her_job.json()["errors"][0]["field"] == "init_from.job_id"

    everyone = app_client.get("/v1/jobs", headers=admin).json()["items"]
    assert sorted(j["owner"] for j in everyone) == ["alice", "alice", "alice", "bob"]
    assert app_client.get("/v1/sweeps", headers=admin).json()["items"][0]["owner"] == "alice"
    assert app_client.get("/v1/datasets", headers=admin).json()["items"][0]["owner"] == "alice"


def test_the_job_list_etag_is_per_owner(app_client: TestClient, owners: Any) -> None:
    alice, bob = owners["alice"], owners["bob"]
    etag = app_client.get("/v1/jobs", headers=alice).headers["etag"]
    assert app_client.post("/v1/jobs", json=tiny_spec(), headers=bob).status_code == 202
    assert app_client.get("/v1/jobs", headers={**alice, "If-None-Match": etag}).status_code == 304


def test_idempotency_keys_are_per_owner(app_client: TestClient, owners: Any) -> None:
    def post(who: str) -> httpx.Response:
        return app_client.post("/v1/jobs", json=tiny_spec(), headers={**owners[who], "Idempotency-Key": "k-1"})

    alice_first, bob_first, alice_again = post("alice"), post("bob"), post("alice")
    assert alice_first.status_code == bob_first.status_code == alice_again.status_code == 202
    assert alice_first.json()["id"] == alice_again.json()["id"] != bob_first.json()["id"]
    assert bob_first.json()["owner"] == "bob" and "idempotent-replayed" not in bob_first.headers


def test_limits_are_per_owner_and_overrides_apply_to_that_owner_only(
    app_client: TestClient, owners: Any, settings: Settings
) -> None:
    database = Database(settings.resolved_database_url, pooled=False)
    with database.session() as session:
        limits.set_overrides(session, "alice", {"max_queued_jobs": 1, "max_epochs": 4})
    database.dispose()

    too_long = app_client.post("/v1/jobs", json=tiny_spec(training={"epochs": 5}), headers=owners["alice"])
    assert too_long.status_code == 422
    assert too_long.json()["detail"] == "training.epochs: 5 epochs is over the limit `max_epochs` of 4"
    short = tiny_spec(training={"epochs": 4})
    assert app_client.post("/v1/jobs", json=short, headers=owners["alice"]).status_code == 202
    full = app_client.post("/v1/jobs", json=short, headers=owners["alice"])
    assert full.status_code == 429
    assert full.json()["detail"] == "1 of your jobs are queued: the limit `max_queued_jobs` is 1; retry later"
    for _ in range(2):  # bob's queue is his own, with the server's limits
        assert app_client.post("/v1/jobs", json=tiny_spec(), headers=owners["bob"]).status_code == 202
    assert app_client.post("/v1/jobs", json=tiny_spec(training={"epochs": 5}), headers=owners["bob"]).status_code == 202

    me = app_client.get("/v1/me", headers=owners["alice"]).json()
    assert me["limits"]["max_queued_jobs"] == 1 and me["limits"]["max_epochs"] == 4
    assert me["limits"]["max_running_jobs"] == settings.max_running_jobs


def steadyfit(args: list[str], settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steadyfit.cli", *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_and_limits_from_the_command_line(api_server: httpx.Client, settings: Settings) -> None:
    created = steadyfit(["keys", "create", "--owner", "dana"], settings)
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split()[2]  # "created key <id> for dana"
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("sf_")
    assert api_server.get("/v1/me", headers=bearer(secret)).json() == {
        "owner": "dana",
        "admin": False,
        "limits": {**api_server.get("/v1/me").json()["limits"]},
        "bounds": {"max_data_bytes": 2 * 2**30, "max_activation_bytes": 2**30, "max_wall_seconds": 86_400.0},
        "uploads": {
            "max_upload_columns": 1000,
            "max_categories": 1000,
            "max_encoded_bytes": 256 * 2**20,
            "max_image_pixels": 4096 * 4096,
            "max_predict_rows": 100_000,
        },
    }
    listed = steadyfit(["keys", "list", "--owner", "dana"], settings)
    assert "dana" in listed.stdout and secret not in listed.stdout

    set_limit = steadyfit(["limits", "set", "dana", "--max-epochs", "3"], settings)
    assert set_limit.returncode == 0, set_limit.stderr
    over = api_server.post("/v1/jobs", json=tiny_spec(training={"epochs": 4}), headers=bearer(secret))
    assert over.status_code == 422
    assert over.json()["errors"][0]["field"] == "training.epochs" and "`max_epochs` of 3" in over.json()["detail"]
    assert steadyfit(["limits", "set", "dana", "--max-epochs", "default"], settings).returncode == 0
    assert (
        api_server.post("/v1/jobs", json=tiny_spec(training={"epochs": 4}), headers=bearer(secret)).status_code == 202
    )

    revoked = steadyfit(["keys", "revoke", key_id], settings)
    assert revoked.returncode == 0, revoked.stderr
    # The API process trusts a key it looked up for `key_cache_seconds` (5 s by default).
    wait_for(lambda: api_server.get("/v1/jobs", headers=bearer(secret)).status_code == 403, 15, "the revocation")
    assert steadyfit(["keys", "create", "--owner", "no spaces"], settings).returncode != 0


def test_an_operator_sets_an_owners_priority_limit_and_weight(settings: Settings) -> None:
    raised = steadyfit(["limits", "set", "dana", "--max-priority", "high", "--weight", "2.5"], settings)
    wrong = steadyfit(["limits", "set", "dana", "--max-priority", "urgent"], settings)
    lowered = steadyfit(["limits", "set", "dana", "--max-priority", "default"], settings)

    assert raised.returncode == 0, raised.stderr
    rows = table_cells(raised.stdout)
    assert ["max_priority", "high", "normal"] in rows and ["weight", "2.5", "1.0"] in rows
    assert wrong.returncode != 0 and "a priority is `low`, `normal` or `high`, or `default`" in wrong.stderr
    assert lowered.returncode == 0, lowered.stderr
    database = Database(settings.resolved_database_url, pooled=False)
    with database.session() as session:
        assert limits.overrides(session, "dana") == {"weight": 2.5}
    database.dispose()


def test_serve_refuses_a_public_address_without_keys_unless_told(settings: Settings) -> None:
    env = {**settings_env(settings), "STEADYFIT_AUTH": ""}
    env.pop("STEADYFIT_AUTH")
    refused = subprocess.run(
        [sys.executable, "-m", "steadyfit.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    assert "--auth keys" in refused.stderr and "--auth off" in refused.stderr


def test_a_worker_fails_a_job_whose_spec_names_another_owners_data_set_or_weights(
    app_client: TestClient, owners: Any, settings: Settings, worker: Process
) -> None:
    """Admission never stores such a job; a row that says so anyway (written here straight to the
    database) is failed by the worker before it reads the other owner's data or weights."""
    alice = owners["alice"]
    dataset_id = upload_table(app_client, alice)
    alices_job = app_client.post("/v1/jobs", json=tiny_spec(), headers=alice).json()["id"]

    def ended(job_id: str, headers: dict[str, str]) -> Any:
        job = app_client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    assert wait_for(lambda: ended(alices_job, alice), 180, "alice's job")["status"] == "succeeded"
    foreign = {
        "data set": (tiny_spec(dataset={"id": dataset_id}), f"data set {dataset_id} is not one of bob's data sets"),
        "weights": (
            tiny_spec(init_from={"job_id": alices_job}),
            f"job {alices_job} is not one of bob's jobs to start from",
        ),
    }
    database = Database(settings.resolved_database_url, pooled=False)
    with database.session() as session:
        rows = {
            what: jobs_repository.add(
                session,
                Job(
                    id=str(uuid.uuid4()),
                    owner="bob",
                    status="queued",
                    task="classification",
                    spec=JobSpec.model_validate(spec).with_task("classification").model_dump(mode="json"),
                ),
            ).id
            for what, (spec, _) in foreign.items()
        }
    database.dispose()
    queue = TaskQueue(settings)
    for job_id in rows.values():
        queue.send_train(job_id)
    queue.close()

    for what, (_, error) in foreign.items():
        job = wait_for(partial(ended, rows[what], owners["bob"]), 180, f"bob's job on alice's {what}")
        assert job["status"] == "failed", (what, job)
        assert job["error"] == f"NotTheOwners: {error}", what
        assert job["epochs_completed"] == 0
        assert artifact_store(settings).list(f"jobs/{rows[what]}/") == []
