"""The analyses' rows on PostgreSQL: an analysis left queued or running by a lost worker is failed, saying so."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from core.analyses import repository
from core.db.base import utcnow
from core.db.engine import Database
from core.states import AnalysisKind, AnalysisStatus
from tests.fixtures import tiny_spec


def test_an_analysis_nobody_finished_is_failed_and_a_recent_one_is_left_alone(
    client: TestClient, database_url: str
) -> None:
    old, recent = (client.post("/v1/jobs", json=tiny_spec()).json()["id"] for _ in range(2))
    database = Database(database_url)
    with database.session() as session:
        repository.request(session, old, AnalysisKind.LANDSCAPE, {})
        repository.record(session, old, AnalysisKind.LANDSCAPE, AnalysisStatus.RUNNING)
        repository.request(session, recent, AnalysisKind.LANDSCAPE, {})
        stale = repository.get(session, old, AnalysisKind.LANDSCAPE)
        assert stale is not None
        stale.updated_at = utcnow() - timedelta(seconds=700)
    with database.session() as session:
        assert repository.fail_stale(session, older_than=630) == [(old, AnalysisKind.LANDSCAPE)]
    failed = client.get(f"/v1/jobs/{old}/landscape").json()
    assert failed["status"] == "failed" and "the worker running it was lost" in failed["error"]
    assert client.get(f"/v1/jobs/{recent}/landscape").json()["status"] == "queued"
