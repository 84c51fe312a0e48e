"""Projects, tags, GET /v1/projects and the searches of GET /v1/jobs through HTTP: on PostgreSQL (JSONB) and
on the embedded mode's SQLite (json_extract), with the same jobs and the same answers; another owner's jobs
never show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job
from core.settings import Settings
from service.app import create_app
from tests.fixtures import bearer, create_key, tiny_spec
from tests.jobs.test_router import field_errors, submit

# name → (project, tags, spec changes, best val_loss once "trained"); submitted in this order.
JOBS: dict[str, tuple[str | None, dict[str, str], dict[str, Any], float | None]] = {
    "a": ("vision", {"team": "red", "stage": "tuning"}, {"model": {"hidden_layers": [8], "dropout": 0.1}}, 0.5),
    "b": ("vision", {"team": "blue"}, {"model": {"hidden_layers": [16], "dropout": 0.3}}, 0.2),
    "c": (None, {"team": "red"}, {"model": {"hidden_layers": [8], "dropout": 0.5}}, 0.9),
    "d": ("vision", {"team": "red"}, {"optimizer": {"name": "sgd", "lr": 0.1}}, None),
    "e": ("vision", {}, {"model": {"hidden_layers": [8], "dropout": 0.2}}, 0.5),
}


def labelled(name: str) -> dict[str, Any]:
    project, tags, changes, _ = JOBS[name]
    body = {**tiny_spec(name=name, **changes), "tags": tags}
    return body if project is None else {**body, "project": project}


def names(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    return [job["name"] for job in response.json()["items"]]


def every_page(client: TestClient, **params: Any) -> list[str]:
    """The names on every page of a list, one job a page, following `next_cursor`."""
    found: list[str] = []
    cursor = None
    while True:
        page = client.get("/v1/jobs", params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        found += [job["name"] for job in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


def submit_all(alice: TestClient, bob: TestClient, database_url: str) -> dict[str, dict[str, Any]]:
    """Alice's jobs as JOBS lists them, their best val_loss recorded as a worker would; and bob's, which
    match every filter alice's do."""
    jobs = {name: submit(alice, labelled(name)) for name in JOBS}
    for name in ("a", "c"):
        submit(bob, {**labelled(name), "name": f"bob-{name}"})
    database = Database(database_url, pooled=False)
    with database.session() as session:
        for name, (*_, val_loss) in JOBS.items():
            if val_loss is not None:
                metrics = {"val_loss": val_loss, "val_accuracy": 1 - val_loss}
                session.execute(update(Job).where(Job.id == jobs[name]["id"]).values(best_metrics=metrics))
        for job in session.scalars(select(Job).where(Job.owner == "bob")):
            job.best_metrics = {"val_loss": JOBS[str(job.name).removeprefix("bob-")][3]}
    database.dispose()
    return jobs


def check_searches(alice: TestClient, bob: TestClient, database_url: str) -> None:
    jobs = submit_all(alice, bob, database_url)
    assert (jobs["a"]["project"], jobs["a"]["tags"]) == ("vision", {"team": "red", "stage": "tuning"})
    assert (jobs["c"]["project"], jobs["c"]["tags"]) == ("default", {"team": "red"})
    assert "project" not in jobs["a"]["spec"] and "tags" not in jobs["a"]["spec"]
    assert alice.get(f"/v1/jobs/{jobs['b']['id']}").json()["tags"] == {"team": "blue"}

    # Filters: newest first, only alice's.
    assert names(alice) == ["e", "d", "c", "b", "a"]
    assert names(alice, project="vision") == ["e", "d", "b", "a"]
    assert names(alice, project="default") == ["c"]
    assert names(alice, tag="team:red") == ["d", "c", "a"]
    assert names(alice, tag=["team:red", "stage:tuning"]) == ["a"]
    assert names(alice, tag="team:") == []
    assert names(alice, project="vision", tag="team:red", status="queued") == ["d", "a"]
    assert names(alice, where="model.dropout>=0.2") == ["e", "c", "b"]
    assert names(alice, where=["model.dropout>0.1", "model.dropout<0.5"]) == ["e", "b"]
    assert names(alice, where="model.dropout=0.2") == ["e"]
    assert names(alice, where="model.hidden_layers.0=8") == ["e", "d", "c", "a"]
    assert names(alice, where="optimizer.name=sgd") == ["d"]
    assert names(alice, where='optimizer.name!="sgd"') == ["e", "c", "b", "a"]
    assert names(alice, where="optimizer.lr>0.05") == ["d"]
    assert names(alice, where="optimizer.name>=0") == []  # a string is never a number
    assert names(alice, where="scheduler=null") == ["e", "d", "c", "b", "a"]
    assert names(alice, where="model.no_such_field=null") == ["e", "d", "c", "b", "a"]
    assert names(alice, where="model.no_such_field!=1") == ["e", "d", "c", "b", "a"]
    assert names(alice, where="model.batch_norm=false", tag="team:blue") == ["b"]
    created_b = jobs["b"]["created_at"]
    assert names(alice, created_after=created_b) == ["e", "d", "c", "b"]
    assert names(alice, created_before=created_b) == ["a"]
    assert names(alice, created_after=jobs["a"]["created_at"], created_before=created_b) == ["a"]

    # Orders, page by page: the jobs without the metric last either way, ties broken by id.
    tied = sorted(["a", "e"], key=lambda name: jobs[name]["id"])
    assert every_page(alice, order_by="best_metrics.val_loss") == ["b", *tied, "c", "d"]
    assert every_page(alice, order_by="-best_metrics.val_loss") == ["c", *tied[::-1], "b", "d"]
    assert every_page(alice, order_by="-best_metrics.val_accuracy", project="vision") == ["b", *tied[::-1], "d"]
    assert every_page(alice, order_by="created_at") == ["a", "b", "c", "d", "e"]
    assert every_page(alice, order_by="-created_at", tag="team:red") == ["d", "c", "a"]
    assert every_page(alice) == ["e", "d", "c", "b", "a"]

    # Bob sees his own only, whatever he asks for.
    assert names(bob, tag="team:red", order_by="best_metrics.val_loss") == ["bob-a", "bob-c"]
    assert every_page(bob, project="vision", where="model.dropout>=0") == ["bob-a"]
    assert alice.get("/v1/projects").json()["items"] == [
        {"project": "default", "jobs": 1},
        {"project": "vision", "jobs": 4},
    ]
    assert bob.get("/v1/projects").json()["items"] == [
        {"project": "default", "jobs": 1},
        {"project": "vision", "jobs": 1},
    ]


def check_malformed_searches_are_422s(alice: TestClient) -> None:
    assert field_errors(alice.get("/v1/jobs", params={"where": "model.dropout>=abc"}))["where"] == (
        "`model.dropout>=abc`: at character 16, expected a number: `>=` compares numbers only"
    )
    assert "at character 14" in field_errors(alice.get("/v1/jobs", params={"where": "model.dropout~1"}))["where"]
    assert "key:value" in field_errors(alice.get("/v1/jobs", params={"tag": "team"}))["tag"]
    assert "order_by" in field_errors(alice.get("/v1/jobs", params={"order_by": "best_metrics.nonsense"}))
    assert "order_by" in field_errors(alice.get("/v1/jobs", params={"order_by": "name"}))
    assert "project" in field_errors(alice.get("/v1/jobs", params={"project": "Not A Slug"}))
    assert "created_after" in field_errors(alice.get("/v1/jobs", params={"created_after": "yesterday"}))
    newest = alice.get("/v1/jobs", params={"limit": 1}).json()["next_cursor"]
    by_loss = alice.get("/v1/jobs", params={"limit": 1, "order_by": "best_metrics.val_loss"}).json()["next_cursor"]
    other_order = alice.get("/v1/jobs", params={"cursor": by_loss, "order_by": "-best_metrics.val_loss"})
    assert "-best_metrics.val_loss" in field_errors(other_order)["cursor"]
    assert "cursor" in field_errors(alice.get("/v1/jobs", params={"cursor": newest, "order_by": "created_at"}))


def check_submissions_validate_projects_and_tags(alice: TestClient) -> None:
    bad: dict[str, dict[str, Any]] = {
        "project": {"project": "Vision!"},
        "tags": {"tags": {f"k{i}": "v" for i in range(17)}},
        "tags.te:am": {"tags": {"te:am": "red"}},
        "tags.team": {"tags": {"team": "red\n"}},
    }
    for field, body in bad.items():
        assert field in field_errors(alice.post("/v1/jobs", json={**tiny_spec(), **body})), field


def test_projects_tags_and_searches_on_postgres(client: TestClient, settings: Settings, database_url: str) -> None:
    with TestClient(create_app(settings), headers=bearer(create_key(database_url, "bob"))) as bob:
        check_searches(client, bob, database_url)
    check_malformed_searches_are_422s(client)
    check_submissions_validate_projects_and_tags(client)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, str]]:
    """The app on the embedded mode's SQLite database and file-system queue: clients of alice and bob."""
    settings = Settings(data_dir=tmp_path / "embedded")
    url = settings.resolved_database_url
    upgrade(url)
    alice_key, bob_key = create_key(url, "alice"), create_key(url, "bob")
    with (
        TestClient(create_app(settings), headers=bearer(alice_key)) as alice,
        TestClient(create_app(settings), headers=bearer(bob_key)) as bob,
    ):
        yield alice, bob, url


def test_projects_tags_and_searches_on_embedded_sqlite(embedded: tuple[TestClient, TestClient, str]) -> None:
    alice, bob, url = embedded
    check_searches(alice, bob, url)
    check_malformed_searches_are_422s(alice)


def test_a_sweeps_trials_are_in_its_project_with_its_tags(client: TestClient) -> None:
    sweep = {
        "base": tiny_spec(),
        "parameters": {"model.dropout": {"values": [0.0, 0.25]}},
        "algorithm": "grid",
        "max_parallel": 2,
        "project": "vision",
        "tags": {"team": "red"},
    }
    created = client.post("/v1/sweeps", json=sweep)
    assert created.status_code == 202, created.text
    sweep_id = created.json()["id"]

    trials = client.get("/v1/jobs", params={"sweep_id": sweep_id}).json()["items"]
    read = client.get(f"/v1/sweeps/{sweep_id}").json()
    found = client.get("/v1/jobs", params={"project": "vision", "tag": "team:red", "where": "model.dropout>0"})

    assert (read["project"], read["tags"]) == ("vision", {"team": "red"})
    assert len(trials) == 2 and all((t["project"], t["tags"]) == ("vision", {"team": "red"}) for t in trials)
    assert [job["spec"]["model"]["dropout"] for job in found.json()["items"]] == [0.25]
    assert "tags.team" in field_errors(client.post("/v1/sweeps", json={**sweep, "tags": {"team": "x" * 129}}))


def test_a_rerun_keeps_the_project_and_tags(client: TestClient) -> None:
    source = submit(client, labelled("a"))

    rerun = client.post(f"/v1/jobs/{source['id']}/rerun", json={"model": {"dropout": 0.4}}).json()

    assert (rerun["project"], rerun["tags"]) == ("vision", {"team": "red", "stage": "tuning"})
