"""The in-memory ETag table: a 304 with no query, and never a stale one once the database has said that the
job changed (PostgreSQL's notification; with SQLite, the next round after `PRAGMA data_version` moves)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text

from core.db.engine import Database
from core.settings import Settings
from service.jobs.versions import Version, VersionTable
from tests.fixtures import tiny_spec, wait_for

OLD = Version('"1.000000-0"', False, "alice", "queued", None, 0)
NEW = Version('"2.000000-1"', False, "alice", "running", None, 1)


def live_table() -> VersionTable:
    table = VersionTable(Database("postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    table.live = True
    return table


def test_a_read_that_raced_with_a_change_is_not_kept() -> None:
    table = live_table()
    mark = table.mark()  # a request starts reading the job
    table.changed("job")  # a commit's notification arrives meanwhile
    table.put("job", OLD, mark)  # what the request read may predate that commit
    assert table.get("job") is None

    table.put("job", NEW, table.mark())  # a read that started after the notification
    assert table.get("job") == NEW
    table.changed("job")
    assert table.get("job") is None


def test_a_change_of_another_job_does_not_evict_or_block() -> None:
    table = live_table()
    mark = table.mark()
    table.changed("other")
    table.put("job", OLD, mark)
    assert table.get("job") == OLD


def test_without_its_listener_the_table_keeps_nothing() -> None:
    table = live_table()
    table.put("job", OLD, table.mark())
    table._restart(live=False)  # the listening connection dropped
    assert table.get("job") is None
    table.put("job", OLD, table.mark())
    assert table.get("job") is None


def test_a_304_costs_no_query_and_a_committed_change_ends_it(client: TestClient, settings: Settings) -> None:
    app: Any = client.app
    versions: VersionTable = app.state.versions
    wait_for(lambda: versions.live, 10, "the version listener")
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    etag = client.get(f"/v1/jobs/{job_id}").headers["etag"]
    assert versions.get(job_id) is not None

    statements: list[str] = []
    event.listen(app.state.database.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/metrics"):
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert statements == []
    page = client.get(f"/v1/jobs/{job_id}/metrics?after_epoch=0")  # an incremental poll: the epochs alone
    assert page.status_code == 200 and page.headers["etag"] == etag and page.json()["status"] == "queued"
    assert len(statements) == 1 and "epoch_metrics" in statements[0]

    # A change committed by another process (a worker's epoch): PostgreSQL notifies, the entry goes.
    other = create_engine(settings.resolved_database_url)
    with other.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET epochs_completed = 1, updated_at = now() WHERE id = :id"), {"id": job_id}
        )
    other.dispose()
    wait_for(lambda: versions.get(job_id) is None, 10, "the notification")
    fresh = client.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.json()["epochs_completed"] == 1
    assert fresh.headers["etag"] != etag

    # This process's own change is forgotten before the answer leaves.
    etag = fresh.headers["etag"]
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
    assert client.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": etag}).json()["status"] == "cancelled"


def test_another_owner_gets_no_304_from_the_table(client: TestClient, database_url: str) -> None:
    from tests.fixtures import bearer, create_key

    app: Any = client.app
    wait_for(lambda: app.state.versions.live, 10, "the version listener")
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    etag = client.get(f"/v1/jobs/{job_id}").headers["etag"]
    bob = {**bearer(create_key(database_url, "bob")), "If-None-Match": etag}
    assert client.get(f"/v1/jobs/{job_id}", headers=bob).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/metrics", headers=bob).status_code == 404
