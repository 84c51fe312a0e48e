"""The ETag table in the embedded mode (SQLite): `PRAGMA data_version` says that the database moved, one query
says which of the kept jobs did. A poll is answered from memory, and its ETag changes exactly when its job
does; a round of the watcher after a commit, and the entry is gone."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from core.db.engine import Database
from core.db.migrate import upgrade
from core.db.models import Job
from core.db.notifications import DataVersion
from core.jobs import repository
from core.settings import Settings
from core.spec.job import JobSpec
from core.states import JobStatus
from core.tenants.principal import KEYLESS
from service.app import create_app
from service.jobs import service
from service.jobs.versions import VersionTable
from tests.fixtures import embedded_serve, tiny_spec, wait_for

WORKER = "worker-1"


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "embedded", auth="off")
    upgrade(settings.resolved_database_url)
    return settings


@pytest.fixture
def worker_database(embedded: Settings) -> Iterator[Database]:
    """The database as the worker's process reaches it: connections of its own."""
    database = Database(embedded.resolved_database_url)
    yield database
    database.dispose()


def running_job(database: Database) -> str:
    """A job claimed by `WORKER`, as a worker claims it."""
    spec = JobSpec.model_validate(tiny_spec()).model_dump(mode="json")
    with database.session() as session:
        job = Job(id=str(uuid.uuid4()), status=JobStatus.QUEUED, task="classification", spec=spec)
        job_id = repository.add(session, job).id
    with database.session() as session:
        assert repository.claim(session, job_id, WORKER, lease_seconds=600, max_attempts=3) is not None
    return job_id


def write_epoch(database: Database, job_id: str, epoch: int) -> None:
    metrics = {"val_loss": 1 / epoch}
    with database.single_statement_session() as session:
        assert repository.record_epoch(session, job_id, WORKER, epoch, metrics, epoch, metrics)


def renew_lease(database: Database, job_id: str) -> None:
    """A heartbeat: a commit, but no change a client can see."""
    with database.session() as session:
        assert repository.renew_lease(session, job_id, WORKER, lease_seconds=600) is False


def test_data_version_moves_when_another_connection_commits(embedded: Settings, worker_database: Database) -> None:
    data_version = DataVersion(embedded.resolved_database_url)
    try:
        before = data_version.read()
        assert data_version.read() == before
        running_job(worker_database)
        assert data_version.read() != before
    finally:
        data_version.close()


def test_one_round_after_a_commit_drops_exactly_the_jobs_that_changed(
    embedded: Settings, worker_database: Database
) -> None:
    database = Database(embedded.resolved_database_url)
    table = VersionTable(database)
    table.live = True
    moving, still = running_job(worker_database), running_job(worker_database)
    with database.autocommit_session() as session:
        for job_id in (moving, still):
            service.version(session, job_id, KEYLESS, table)
    kept, stale = table.get(still), table.get(moving)
    assert kept is not None and stale is not None
    under_way = table.mark()  # a request that read `moving` before its epoch committed

    write_epoch(worker_database, moving, 1)
    renew_lease(worker_database, still)
    table.drop_changed()  # the watcher's round, once data_version has moved

    assert table.get(moving) is None and table.get(still) == kept
    table.put(moving, stale, under_way)
    assert table.get(moving) is None, "what a read under way read may predate the commit"
    database.dispose()


def request_statements(client: TestClient) -> list[str]:
    """The SQL the app runs for requests from now on (not its watcher's round)."""
    app: Any = client.app
    statements: list[str] = []

    def record(*args: Any) -> None:
        if threading.current_thread().name != "job-version-watcher":
            statements.append(args[2])

    event.listen(app.state.database.engine, "before_cursor_execute", record)
    return statements


@pytest.fixture
def embedded_app(embedded: Settings) -> Iterator[tuple[TestClient, VersionTable]]:
    """The embedded app in process, once its data_version watcher runs, and its ETag table."""
    with TestClient(create_app(embedded), base_url="http://127.0.0.1:8000") as client:
        app: Any = client.app
        wait_for(lambda: app.state.versions.live, 10, "the data_version watcher")
        yield client, app.state.versions


def test_a_poll_is_answered_from_memory_and_its_etag_changes_when_the_job_does(
    embedded_app: tuple[TestClient, VersionTable], worker_database: Database
) -> None:
    client, versions = embedded_app
    job_id = running_job(worker_database)
    write_epoch(worker_database, job_id, 1)
    url = f"/v1/jobs/{job_id}/metrics"
    wait_for(lambda: client.get(url).json()["items"], 10, "epoch 1")
    first = client.get(url)
    etag = first.headers["etag"]

    statements = request_statements(client)
    again = client.get(url)
    assert (again.content, again.headers["etag"]) == (first.content, etag)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert statements == []

    renew_lease(worker_database, job_id)  # the database moves, the job does not
    versions.drop_changed()
    statements.clear()  # the round's own query
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert statements == []

    write_epoch(worker_database, job_id, 2)  # the watcher's next round drops the job's entry
    wait_for(lambda: versions.get(job_id) is None, 10, "the watcher's round after epoch 2")
    fresh = client.get(url, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["etag"] != etag
    assert [item["epoch"] for item in fresh.json()["items"]] == [1, 2]


def test_the_job_list_is_answered_from_memory_until_the_database_moves(
    embedded_app: tuple[TestClient, VersionTable], worker_database: Database
) -> None:
    client, _versions = embedded_app
    job_id = running_job(worker_database)
    first = client.get("/v1/jobs")
    assert [job["id"] for job in first.json()["items"]] == [job_id]

    statements = request_statements(client)
    assert client.get("/v1/jobs").content == first.content
    assert client.get("/v1/jobs", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    assert statements == []

    write_epoch(worker_database, job_id, 1)  # another process's commit: the next round ends the kept page
    wait_for(lambda: client.get("/v1/jobs").json()["items"][0]["epochs_completed"] == 1, 10, "epoch 1")
    newer = running_job(worker_database)
    wait_for(lambda: client.get("/v1/jobs").json()["items"][0]["id"] == newer, 10, "the new job")


class ConditionalPoll:
    """Polls one URL as a dashboard does, sending the last ETag it got: a 304 must name that ETag, a 200 a new
    one. Returns the new body, or None for a 304."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http, self.url, self.etag = http, url, ""

    def __call__(self, **params: Any) -> Any:
        response = self.http.get(self.url, params=params, headers={"If-None-Match": self.etag})
        if response.status_code == 304:
            assert response.headers["etag"] == self.etag
            return None
        assert response.status_code == 200 and response.headers["etag"] != self.etag
        self.etag = response.headers["etag"]
        return response.json()


def test_steadyfit_serve_polls_see_each_epoch_its_worker_writes(tmp_path: Path) -> None:
    """Through a real `steadyfit serve` (SQLite, its own worker): conditional polls of a training job and of
    its metrics get a 304 while the job stands still and a new ETag whenever it changed, and miss no epoch."""
    with (
        embedded_serve(tmp_path / "serve", tmp_path / "serve.log") as (_, base_url),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        job_id = http.post("/v1/jobs", json=tiny_spec(training={"epochs": 30, "batch_size": 16})).json()["id"]
        job_poll, metrics_poll = (
            ConditionalPoll(http, f"/v1/jobs/{job_id}"),
            ConditionalPoll(http, f"/v1/jobs/{job_id}/metrics"),
        )
        epochs: list[int] = []
        seen: dict[str, Any] = {"job": None, "status": None}

        def follow() -> bool:
            page = metrics_poll(after_epoch=epochs[-1] if epochs else 0)
            if page is not None:
                new = [item["epoch"] for item in page["items"]]
                assert new == list(range(len(epochs) + 1, len(epochs) + 1 + len(new))), "an epoch was missed"
                epochs.extend(new)
                seen["status"] = page["status"]
            job = job_poll()
            if job is not None:
                assert job != seen["job"], "a new ETag, but the job is the same"
                seen["job"] = job
            return seen["status"] in ("succeeded", "failed", "cancelled")

        wait_for(follow, 120, "the job to end", interval=0.01, progress=lambda: len(epochs))
        final = http.get(f"/v1/jobs/{job_id}").json()
        assert final["status"] == "succeeded" and epochs == list(range(1, final["epochs_completed"] + 1))
        seen["job"] = job_poll() or seen["job"]  # the job's last change, if this poller has not seen it yet
        assert seen["job"] == final, "the body an ETag stands for is the job as it is"
        assert metrics_poll(after_epoch=epochs[-1]) is None and job_poll() is None  # nothing changes any more
        history = [http.get(f"/v1/jobs/{job_id}/metrics") for _ in range(2)]
        assert history[0].content == history[1].content and history[0].headers["etag"] == metrics_poll.etag
        assert [item["epoch"] for item in history[0].json()["items"]] == epochs
