"""Response bodies kept by ETag: a job or a metrics page read again unchanged is sent without a query or
being built again, and a change a client can see is never hidden behind a kept body."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text

from core.settings import Settings
from service.caching import BodyCache, ReadsInFlight
from service.jobs.schemas import JobList, JobRead
from tests.fixtures import tiny_spec, wait_for


def test_a_body_is_handed_out_only_for_its_etag() -> None:
    bodies = BodyCache(max_bytes=800)
    bodies.put("job", '"1"', b"x" * 100)
    assert bodies.get("job", '"1"') == b"x" * 100
    assert bodies.get("job", '"2"') is None  # the job has changed since
    bodies.put("job", '"2"', b"y" * 50)  # replaces the old version's body
    assert bodies.get("job", '"1"') is None and bodies.size == 50


def test_the_least_recently_used_bodies_go_first_past_the_budget() -> None:
    bodies = BodyCache(max_bytes=800)
    for key in "abcdefgh":  # 8 x 100 bytes: exactly the budget
        bodies.put(key, "e", b"." * 100)
    assert bodies.size == 800
    assert bodies.get("a", "e") is not None  # "a" is now the most recently used, "b" the least
    bodies.put("i", "e", b"." * 100)
    assert bodies.get("b", "e") is None and bodies.get("a", "e") is not None
    assert bodies.size == 800
    bodies.put("huge", "e", b"." * 101)  # over an eighth of the budget: not kept, nothing evicted
    assert bodies.get("huge", "e") is None and bodies.size == 800
    assert BodyCache(max_bytes=0).get("a", "e") is None


def test_polls_that_miss_together_wait_for_one_read() -> None:
    flights = ReadsInFlight()
    memory: dict[str, str] = {}
    reads: list[int] = []

    async def poll(number: int, keeps: bool) -> str:
        """As the router answers: memory, else after a read under way memory again, else a read of its own."""
        if "page" in memory or (await flights.wait("page") and "page" in memory):
            return memory["page"]
        with flights.reading("page"):
            reads.append(number)
            await asyncio.sleep(0.05)  # the query, in the thread pool
            if keeps:
                memory["page"] = f"read by {number}"
            return f"read by {number}"

    async def polls(keeps: bool) -> list[str]:
        return await asyncio.gather(*(poll(number, keeps) for number in range(5)))

    assert asyncio.run(polls(keeps=True)) == ["read by 0"] * 5 and reads == [0]
    memory.clear()
    reads.clear()
    # A read that kept nothing (another owner's 404, a 304): those who waited read for themselves.
    assert asyncio.run(polls(keeps=False)) == ["read by 0", *(f"read by {n}" for n in range(1, 5))]
    assert reads == [0, 1, 2, 3, 4]


def listen(client: TestClient) -> list[str]:
    """The SQL this app's engine runs from now on."""
    app: Any = client.app
    statements: list[str] = []
    event.listen(app.state.database.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


def write_epoch(settings: Settings, job_id: str, epoch: int, *, progress: bool) -> None:
    """An epoch's row as another process writes it; with `progress`, the job's too, running (as a worker's is:
    a queued job's body is read afresh at each poll, for its place in the queue)."""
    engine = create_engine(settings.resolved_database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO epoch_metrics (job_id, epoch, metrics, recorded_at) "
                "VALUES (:id, :epoch, CAST(:metrics AS JSON), now())"
            ),
            {"id": job_id, "epoch": epoch, "metrics": f'{{"val_loss": {1 / epoch}}}'},
        )
        if progress:
            connection.execute(
                text(
                    "UPDATE jobs SET status = 'running', epochs_completed = :epoch, updated_at = now() WHERE id = :id"
                ),
                {"id": job_id, "epoch": epoch},
            )
    engine.dispose()


def epochs(page: dict[str, Any]) -> list[int]:
    return [item["epoch"] for item in page["items"]]


def test_an_unchanged_job_and_page_are_sent_again_with_no_query(client: TestClient, settings: Settings) -> None:
    app: Any = client.app
    wait_for(lambda: app.state.versions.live, 10, "the version listener")
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    write_epoch(settings, job_id, 1, progress=True)
    wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["epochs_completed"] == 1, 10, "the epoch")
    page_url = f"/v1/jobs/{job_id}/metrics?after_epoch=0"
    first_job, first_page = client.get(f"/v1/jobs/{job_id}"), client.get(page_url)

    statements = listen(client)
    again_job, again_page = client.get(f"/v1/jobs/{job_id}"), client.get(page_url)
    assert statements == []
    assert (again_job.content, again_job.headers["etag"]) == (first_job.content, first_job.headers["etag"])
    assert (again_page.content, again_page.headers["etag"]) == (first_page.content, first_page.headers["etag"])
    assert epochs(again_page.json()) == [1]
    assert client.get(f"/v1/jobs/{job_id}/metrics?after_epoch=0&limit=5").status_code == 200
    assert statements, "another query is another page: read from the database"

    # Another process writes the next epoch: PostgreSQL notifies and the next poll reads it.
    write_epoch(settings, job_id, 2, progress=True)
    wait_for(lambda: epochs(client.get(page_url).json()) == [1, 2], 10, "epoch 2 in the page")
    assert client.get(f"/v1/jobs/{job_id}").json()["epochs_completed"] == 2


def test_a_page_shows_the_epochs_of_its_etag_and_no_more(client: TestClient, settings: Settings) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    write_epoch(settings, job_id, 1, progress=True)
    write_epoch(settings, job_id, 2, progress=False)  # its row is there, the job's progress not yet
    page = client.get(f"/v1/jobs/{job_id}/metrics")
    assert epochs(page.json()) == [1]
    assert page.headers["etag"].endswith('-1"')


def test_the_job_list_builds_each_job_once_per_version(client: TestClient) -> None:
    ids = [client.post("/v1/jobs", json=tiny_spec(name=f"job-{i}")).json()["id"] for i in range(3)]
    first = client.get("/v1/jobs?limit=2")
    page = JobList.model_validate_json(first.content)  # the page is a valid JobList, newest first
    assert [job.id for job in page.items] == ids[:0:-1] and page.next_cursor is not None
    for job in page.items:
        assert job == JobRead.model_validate_json(client.get(f"/v1/jobs/{job.id}").content)

    statements = listen(client)
    assert client.get("/v1/jobs?limit=2").content == first.content
    assert not any("jobs.spec" in statement for statement in statements), "no job was loaded again"

    assert client.post(f"/v1/jobs/{ids[2]}/cancel").status_code == 202
    statuses = [job["status"] for job in client.get("/v1/jobs?limit=2").json()["items"]]
    assert statuses == ["cancelled", "queued"]
    rest = client.get(f"/v1/jobs?limit=2&cursor={page.next_cursor}").json()
    assert [job["id"] for job in rest["items"]] == ids[:1] and rest["next_cursor"] is None
