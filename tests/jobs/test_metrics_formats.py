"""Per-epoch metrics as JSON, CSV and downsampled, from epochs written the way a worker writes them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.db.engine import Database
from core.jobs import repository
from core.settings import Settings
from tests.fixtures import tiny_spec


def job_with_epochs(client: TestClient, settings: Settings, losses: list[float | None]) -> str:
    job_id: str = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    database = Database(settings.resolved_database_url)
    with database.session() as session:
        repository.claim(session, job_id, "w", lease_seconds=60, max_attempts=3)
    for epoch, loss in enumerate(losses, start=1):
        with database.session() as session:
            metrics = {"val_loss": loss, "train_loss": 1.0, "val_accuracy": 0.5}
            repository.record_epoch(session, job_id, "w", epoch, metrics, None, None)
    database.dispose()
    return job_id


def test_metrics_as_csv_have_one_row_per_epoch_and_blank_non_finite_values(
    client: TestClient, settings: Settings
) -> None:
    job_id = job_with_epochs(client, settings, [0.5, None])

    response = client.get(f"/v1/jobs/{job_id}/metrics", params={"format": "csv"})

    assert response.headers["content-type"].startswith("text/csv")
    assert response.text == "epoch,train_loss,val_loss,val_accuracy\n1,1.0,0.5,0.5\n2,1.0,,0.5\n"


def test_after_epoch_and_max_points_cut_what_is_sent(client: TestClient, settings: Settings) -> None:
    job_id = job_with_epochs(client, settings, [float(10 - i) for i in range(10)])

    newer = client.get(f"/v1/jobs/{job_id}/metrics", params={"after_epoch": 7}).json()["items"]
    sampled = client.get(f"/v1/jobs/{job_id}/metrics", params={"max_points": 4}).json()["items"]

    assert [item["epoch"] for item in newer] == [8, 9, 10]
    # one bucket over epochs 2..9 (losses 9..2): its lowest (epoch 9) and highest (epoch 2) are kept
    assert [item["epoch"] for item in sampled] == [1, 2, 9, 10]
