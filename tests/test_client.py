"""The Python client's polling, against the app in process: `wait` until a job ends, `analysis(wait=)` until an
analysis ends, each giving up after its timeout."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from core.analyses import repository as analyses
from core.db.engine import Database
from core.states import AnalysisKind, AnalysisStatus
from steadyfit.client import ApiError, Client
from tests.fixtures import bearer, finish_as_a_worker, tiny_spec


@pytest.fixture
def api(client: TestClient) -> Client:
    """The client, sending its requests to the app in process."""
    api = Client(str(client.base_url))
    api.http = client
    return api


def test_wait_returns_a_job_once_it_has_ended_or_as_it_is_after_the_timeout(api: Client, database_url: str) -> None:
    job_id = api.submit(tiny_spec()).id
    assert api.wait(job_id, timeout=0.6).status == "queued"
    finish_as_a_worker(database_url, job_id, 0.5, 0.01)
    # The API's cached read moves when the change notification arrives, a moment after the commit.
    assert api.wait(job_id, timeout=30).status == "succeeded"


def test_analysis_waits_through_a_404_and_returns_the_analysis_once_it_has_ended(
    api: Client, database_url: str
) -> None:
    job_id = api.submit(tiny_spec()).id
    with pytest.raises(ApiError) as missing:
        api.analysis(job_id, "pruning", wait=0.6)  # not asked for yet: a 404 until the timeout
    assert missing.value.status == 404

    database = Database(database_url)
    with database.session() as session:
        analyses.request(session, job_id, AnalysisKind.PRUNING, {})
    assert api.analysis(job_id, "pruning", wait=0.6).status == "queued"
    with database.session() as session:
        analyses.record(session, job_id, AnalysisKind.PRUNING, AnalysisStatus.FAILED, error="no weights")
    assert api.analysis(job_id, "pruning", wait=0.6).error == "no weights"


def test_analysis_raises_an_error_other_than_a_404_at_once(api: Client) -> None:
    api.http.headers.update(bearer("not-a-key"))
    started = time.monotonic()
    with pytest.raises(ApiError) as refused:
        api.analysis("some-job", "pruning", wait=30)
    assert refused.value.status == 401 and time.monotonic() - started < 5


def test_submit_takes_a_project_and_tags_and_jobs_finds_them(api: Client, database_url: str) -> None:
    low = api.submit(tiny_spec(name="low", model={"hidden_layers": [8], "dropout": 0.3}), "vision", {"team": "red"})
    high = api.submit(tiny_spec(name="high", model={"hidden_layers": [8], "dropout": 0.4}), "vision", {"team": "red"})
    api.submit(tiny_spec(name="other", model={"hidden_layers": [8], "dropout": 0.4}), "vision", {"team": "blue"})
    api.submit(tiny_spec(name="untagged", model={"hidden_layers": [8], "dropout": 0.5}))
    finish_as_a_worker(database_url, low.id, 0.2, 0.01)
    finish_as_a_worker(database_url, high.id, 0.7, 0.01)

    found = api.jobs(
        project="vision", tags={"team": "red"}, where=["model.dropout>=0.2"], order_by="best_metrics.val_loss"
    )
    newest = api.jobs(where=["model.dropout>0.35"], created_after=low.created_at)

    assert (low.project, low.tags) == ("vision", {"team": "red"})
    assert [(item.project, item.jobs) for item in api.projects().items] == [("default", 1), ("vision", 3)]
    assert [job.name for job in found.items] == ["low", "high"]
    assert [job.name for job in newest.items] == ["untagged", "other", "high"]
    with pytest.raises(ApiError) as malformed:
        api.jobs(where=["model.dropout=>0.2"])
    assert malformed.value.status == 422 and "at character 15" in malformed.value.problem["detail"]
