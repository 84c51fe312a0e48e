"""GET /metrics: with keys on, only an admin's key or the metrics token may read it; its fleet figures are right,
and come from a reading of the jobs table that scrapes share for `metrics_refresh_seconds`, not from one per
scrape."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event

from core.db.base import utcnow
from core.db.engine import Database
from core.db.models import Job
from core.settings import Settings
from service.app import create_app
from tests.fixtures import bearer, create_key

TOKEN = "metrics-token-for-this-test"


def add_jobs(database_url: str, statuses: dict[str, int], epochs: int = 0, worker: str | None = None) -> None:
    """`statuses[s]` jobs in status s, each with `epochs` epochs; the running ones leased by `worker`."""
    database = Database(database_url, pooled=False)
    try:
        with database.session() as session:
            for status, count in statuses.items():
                for _ in range(count):
                    leased = worker if status == "running" else None
                    expires = utcnow() + timedelta(seconds=30) if leased else None
                    session.add(
                        Job(
                            id=str(uuid.uuid4()),
                            status=status,
                            task="classification",
                            spec={},
                            epochs_completed=epochs,
                            worker_id=leased,
                            lease_expires_at=expires,
                        )
                    )
    finally:
        database.dispose()


def sample(text: str, name: str) -> float:
    """The value of the sample `name` (with its labels, as Prometheus writes them) in a scrape."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name} in the scrape")


def test_with_keys_only_an_admin_key_or_the_metrics_token_reads_metrics(
    settings: Settings, database_url: str, api_key: str
) -> None:
    admin = create_key(database_url, "ops", admin=True)
    with TestClient(create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}))) as client:
        anonymous = client.get("/metrics")
        unknown = client.get("/metrics", headers=bearer("not-the-token"))
        not_admin = client.get("/metrics", headers=bearer(api_key))
        by_admin = client.get("/metrics", headers=bearer(admin))
        by_token = client.get("/metrics", headers=bearer(TOKEN))

    for refused, status in ((anonymous, 401), (unknown, 401), (not_admin, 403)):
        assert refused.status_code == status, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert by_admin.status_code == by_token.status_code == 200
    assert "steadyfit_jobs{" in by_token.text


def test_without_a_metrics_token_an_admin_key_still_reads_and_the_token_check_is_off(
    settings: Settings, database_url: str
) -> None:
    admin = create_key(database_url, "ops", admin=True)
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics", headers=bearer(admin)).status_code == 200
        assert client.get("/metrics", headers=bearer("")).status_code == 401


def test_without_keys_metrics_need_none(settings: Settings) -> None:
    keyless = settings.model_copy(update={"auth": "off"})
    with TestClient(create_app(keyless), base_url="http://127.0.0.1") as client:
        assert client.get("/metrics").status_code == 200


def scan_counter(database: Database) -> list[str]:
    """Collects the statements run on `database` that read the jobs table."""
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM jobs" in statement:
            statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", note)
    return statements


@pytest.mark.parametrize("refresh", [3600.0, 0.0])
def test_fleet_metrics_are_right_and_read_at_most_once_per_refresh(
    settings: Settings, database_url: str, refresh: float
) -> None:
    add_jobs(database_url, {"queued": 3, "succeeded": 2}, epochs=4)
    add_jobs(database_url, {"running": 1}, epochs=2, worker="worker-a")
    with TestClient(
        create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN), "metrics_refresh_seconds": refresh}))
    ) as client:
        scans = scan_counter(client.app.state.database)  # type: ignore[attr-defined]

        def scrape() -> str:
            response = client.get("/metrics", headers=bearer(TOKEN))
            assert response.status_code == 200
            return response.text

        first = scrape()
        add_jobs(database_url, {"failed": 1, "queued": 2}, epochs=5)
        second = scrape()

    assert sample(first, 'steadyfit_jobs{status="queued"}') == 3
    assert sample(first, 'steadyfit_jobs{status="succeeded"}') == 2
    assert sample(first, 'steadyfit_jobs{status="running"}') == 1
    assert sample(first, 'steadyfit_jobs{status="failed"}') == 0
    assert sample(first, "steadyfit_epochs_trained_total") == 3 * 4 + 2 * 4 + 2
    assert 'steadyfit_worker_heartbeat_timestamp_seconds{worker="worker-a"}' in first
    if refresh:  # within the refresh interval a scrape reuses the reading: the table was read once
        assert fleet(second) == fleet(first)
        assert len(scans) == 3  # jobs by status, epochs, leases: one reading
    else:
        assert sample(second, 'steadyfit_jobs{status="queued"}') == 5
        assert sample(second, 'steadyfit_jobs{status="failed"}') == 1
        assert sample(second, "steadyfit_epochs_trained_total") == 3 * 4 + 2 * 4 + 2 + 3 * 5
        assert len(scans) == 6


def fleet(text: str) -> list[str]:
    """The scrape's lines about jobs and workers (not the API's latency, which each scrape adds to)."""
    return [
        line
        for line in text.splitlines()
        if line.startswith(("steadyfit_jobs", "steadyfit_epochs", "steadyfit_worker"))
    ]
