"""The in-memory ETag table: a 304 with no query, and never a stale one once the database has said that the
job changed (PostgreSQL's notification; with SQLite, the next round after `PRAGMA data_version` moves). Pages
of the job list the same way: kept until a job on them changes or a job of their owner is created."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text

from core.db.engine import Database
from core.db.models import Job
from core.jobs import repository
from core.settings import Settings
from core.spec.job import JobSpec
from service.app import create_app
from service.jobs.versions import KeptPage, Version, VersionTable
from tests.fixtures import bearer, create_key, tiny_spec, wait_for

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


def alices_page(table: VersionTable, mark: int, moves_with_changes: bool = False) -> KeptPage:
    return KeptPage('"page"', frozenset({"a", "b"}), "alice", moves_with_changes, mark)


def test_a_kept_page_lasts_until_a_job_on_it_changes() -> None:
    table = live_table()
    table.keep_page("p", alices_page(table, table.mark()))
    table.changed("c")  # a job not on the page: its place is fixed (newest first), the page is unchanged
    assert table.page("p") == alices_page(table, 0)
    table.changed("b")
    assert table.page("p") is None


def test_a_new_job_ends_its_owners_pages_and_everyones_but_not_another_owners() -> None:
    table = live_table()
    everyone = KeptPage('"all"', frozenset({"a"}), None, False, table.mark())
    bobs = KeptPage('"bob"', frozenset({"x"}), "bob", False, table.mark())
    for key, page in (("alice", alices_page(table, table.mark())), ("everyone", everyone), ("bob", bobs)):
        table.keep_page(key, page)
    table.added("alice")
    assert table.page("alice") is None and table.page("everyone") is None
    assert table.page("bob") == bobs


def test_a_page_a_change_can_refilter_lasts_until_any_job_changes() -> None:
    table = live_table()
    table.keep_page("running", alices_page(table, table.mark(), moves_with_changes=True))
    table.changed("c")  # e.g. job c started running: it belongs on a `?status=running` page now
    assert table.page("running") is None


def test_a_page_read_while_a_job_was_created_or_changed_is_not_kept() -> None:
    table = live_table()
    mark = table.mark()
    table.added("alice")
    table.keep_page("p", alices_page(table, mark))
    assert table.page("p") is None
    mark = table.mark()
    table.changed("a")
    table.keep_page("p", alices_page(table, mark))
    assert table.page("p") is None
    table._restart(live=False)
    table.keep_page("p", alices_page(table, table.mark()))
    assert table.page("p") is None


def test_this_processs_own_new_job_ends_the_kept_pages_as_it_commits(database_url: str) -> None:
    table = VersionTable(Database(database_url))  # not listening: only its own commits can tell it
    table.live = True
    table.keep_page("p", alices_page(table, table.mark()))
    spec = JobSpec.model_validate(tiny_spec()).model_dump(mode="json")
    with table.database.session() as session:
        repository.add(session, Job(id="new", owner="alice", status="queued", task="classification", spec=spec))
        session.flush()
        assert table.page("p") is not None  # not before the commit: a rollback would leave the page as it was
    assert table.page("p") is None
    table.database.dispose()


def test_the_job_list_is_answered_from_memory_until_a_job_changes_or_is_created(
    client: TestClient, settings: Settings, api_key: str
) -> None:
    app: Any = client.app
    versions: VersionTable = app.state.versions
    wait_for(lambda: versions.live, 10, "the version listener")
    first = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    page = client.get("/v1/jobs")
    assert [job["id"] for job in page.json()["items"]] == [first]

    statements: list[str] = []
    event.listen(app.state.database.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    assert client.get("/v1/jobs").content == page.content
    assert client.get("/v1/jobs", headers={"If-None-Match": page.headers["etag"]}).status_code == 304
    assert statements == []

    second = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    assert [job["id"] for job in client.get("/v1/jobs").json()["items"]] == [second, first]

    # Another process's change of a job on the page, then its new job: each notification ends the kept page.
    other = create_engine(settings.resolved_database_url)
    with other.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET epochs_completed = 3, updated_at = now() WHERE id = :id"), {"id": first}
        )
    wait_for(lambda: client.get("/v1/jobs").json()["items"][1]["epochs_completed"] == 3, 10, "the change")
    other.dispose()
    elsewhere = Database(settings.resolved_database_url)  # another process's connections, without this one's hook
    spec = JobSpec.model_validate(tiny_spec()).model_dump(mode="json")
    with elsewhere.session() as session:
        repository.add(
            session, Job(id="from-elsewhere", owner="alice", status="queued", task="classification", spec=spec)
        )
    elsewhere.dispose()
    wait_for(lambda: client.get("/v1/jobs").json()["items"][0]["id"] == "from-elsewhere", 10, "the new job")

    # Another owner's list is its own: bob's jobs are not alice's, nor is alice's page bob's.
    bob = bearer(create_key(settings.resolved_database_url, "bob"))
    assert client.get("/v1/jobs", headers=bob).json()["items"] == []


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
    app: Any = client.app
    wait_for(lambda: app.state.versions.live, 10, "the version listener")
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    etag = client.get(f"/v1/jobs/{job_id}").headers["etag"]
    bob = {**bearer(create_key(database_url, "bob")), "If-None-Match": etag}
    assert client.get(f"/v1/jobs/{job_id}", headers=bob).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}/metrics", headers=bob).status_code == 404


def test_without_the_new_job_trigger_no_page_is_kept(settings: Settings, api_key: str) -> None:
    """A database not yet migrated to 0023 never says that a job was created: every list reads the database."""
    other = create_engine(settings.resolved_database_url)
    with other.begin() as connection:
        connection.execute(text("DROP TRIGGER jobs_added ON jobs"))
    other.dispose()
    with TestClient(create_app(settings), headers=bearer(api_key)) as client:
        app: Any = client.app
        versions: VersionTable = app.state.versions
        wait_for(lambda: versions.live, 10, "the version listener")
        assert not versions.new_jobs_notified
        client.post("/v1/jobs", json=tiny_spec())
        client.get("/v1/jobs")
        statements: list[str] = []
        event.listen(app.state.database.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        assert len(client.get("/v1/jobs").json()["items"]) == 1
        assert any("FROM jobs" in statement for statement in statements)
