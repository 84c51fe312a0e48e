"""The chart routes through HTTP, on PostgreSQL: a job's epochs as the worker writes them, drawn as Vega-Lite,
SVG and PNG; the owner check; the names listed in a 404."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.analyses import repository as analyses
from core.db.engine import Database
from core.jobs import repository
from core.states import AnalysisKind, AnalysisStatus, JobStatus, StopReason
from tests.fixtures import LANDSCAPE_RESULT, bearer, create_key, finish_as_a_worker, sweep_body, tiny_spec

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def job_with_epochs(client: TestClient, database_url: str) -> str:
    """A job a worker has trained two epochs of, as the worker writes them."""
    job_id: str = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    with Database(database_url).session() as session:
        assert repository.claim(session, job_id, "w1", lease_seconds=60, max_attempts=3) is not None
        for epoch, (train, val) in enumerate([(1.1, 1.0), (0.8, 0.9)], start=1):
            metrics = {"train_loss": train, "val_loss": val, "weight_l1": 5.0 - epoch, "weight_l2": 1.0}
            assert repository.record_epoch(session, job_id, "w1", epoch, metrics, 2, metrics)
        session.commit()
    return job_id


def test_a_jobs_learning_curves_come_as_vega_lite_svg_and_png(client: TestClient, database_url: str) -> None:
    job_id = job_with_epochs(client, database_url)

    spec = client.get(f"/v1/jobs/{job_id}/charts/learning_curves")
    assert spec.status_code == 200
    assert spec.headers["content-type"] == "application/vnd.vegalite+json"
    loss = spec.json()["layer"][0]["data"]["values"]
    assert [(r["epoch"], r["split"], r["loss"]) for r in loss] == [
        (1, "train", 1.1),
        (1, "val", 1.0),
        (2, "train", 0.8),
        (2, "val", 0.9),
    ]
    svg = client.get(f"/v1/jobs/{job_id}/charts/learning_curves", params={"format": "svg"})
    assert svg.headers["content-type"] == "image/svg+xml" and svg.text.startswith("<svg")
    png = client.get(f"/v1/jobs/{job_id}/charts/regularization", params={"format": "png"})
    assert png.headers["content-type"] == "image/png" and png.content.startswith(PNG_SIGNATURE)

    again = client.get(f"/v1/jobs/{job_id}/charts/learning_curves", headers={"If-None-Match": spec.headers["etag"]})
    assert again.status_code == 304
    assert svg.headers["etag"] != spec.headers["etag"]  # one ETag per format


def test_the_landscape_chart_draws_the_landscape_analysis_once_it_has_a_result(
    client: TestClient, database_url: str
) -> None:
    job_id = job_with_epochs(client, database_url)
    chart = f"/v1/jobs/{job_id}/charts/landscape"
    assert client.get(chart).json()["data"]["values"] == [{"text": "nothing to draw yet"}]  # none asked for

    with Database(database_url).session() as session:
        analyses.request(session, job_id, AnalysisKind.LANDSCAPE, {})
        session.commit()
    assert client.get(chart).json()["data"]["values"] == [{"text": "nothing to draw yet"}]  # queued

    with Database(database_url).session() as session:
        analyses.record(session, job_id, AnalysisKind.LANDSCAPE, AnalysisStatus.SUCCEEDED, LANDSCAPE_RESULT)
        session.commit()
    assert "top Hessian eigenvalue 12.5" in client.get(chart).json()["title"]


def test_an_analysis_chart_changes_its_etag_when_the_analysis_ends_after_the_job(
    client: TestClient, database_url: str
) -> None:
    job_id = job_with_epochs(client, database_url)
    with Database(database_url).session() as session:
        assert repository.finish(session, job_id, "w1", JobStatus.SUCCEEDED, stop_reason=StopReason.MAX_EPOCHS)
        analyses.request(session, job_id, AnalysisKind.LANDSCAPE, {})
        session.commit()
    chart = f"/v1/jobs/{job_id}/charts/landscape"
    queued = client.get(chart)
    assert queued.headers["cache-control"] == "private, no-cache"  # the job has ended, its landscape has not

    with Database(database_url).session() as session:
        analyses.record(session, job_id, AnalysisKind.LANDSCAPE, AnalysisStatus.SUCCEEDED, LANDSCAPE_RESULT)
        session.commit()
    drawn = client.get(chart, headers={"If-None-Match": queued.headers["etag"]})
    assert drawn.status_code == 200 and "top Hessian eigenvalue 12.5" in drawn.json()["title"]
    assert "max-age" in drawn.headers["cache-control"]
    assert client.get(chart, headers={"If-None-Match": drawn.headers["etag"]}).status_code == 304


def test_an_unknown_chart_is_a_404_that_lists_the_charts(client: TestClient) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    response = client.get(f"/v1/jobs/{job_id}/charts/learning")
    assert response.status_code == 404
    assert "learning_curves" in response.json()["detail"] and "regularization" in response.json()["detail"]
    sweep_id = client.post("/v1/sweeps", json=sweep_body()).json()["id"]
    response = client.get(f"/v1/sweeps/{sweep_id}/charts/path")
    assert response.status_code == 404 and "parallel_coordinates" in response.json()["detail"]


def test_another_owners_charts_are_a_404(client: TestClient, database_url: str) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    sweep_id = client.post("/v1/sweeps", json=sweep_body()).json()["id"]
    bob = bearer(create_key(database_url, "bob"))
    assert client.get(f"/v1/jobs/{job_id}/charts/learning_curves", headers=bob).status_code == 404
    assert client.get(f"/v1/sweeps/{sweep_id}/charts/parallel_coordinates", headers=bob).status_code == 404
    mine = client.get(f"/v1/sweeps/{sweep_id}/charts/parallel_coordinates")
    assert mine.status_code == 200 and mine.headers["cache-control"] == "private, no-cache"


def test_chosen_jobs_parallel_coordinates_have_an_axis_per_differing_spec_field_and_the_best_metric(
    client: TestClient, database_url: str
) -> None:
    specs = [
        tiny_spec(model={"hidden_layers": [8], "dropout": 0.1}, optimizer={"name": "adam", "lr": 0.01}),
        tiny_spec(model={"hidden_layers": [8], "dropout": 0.3}, optimizer={"name": "adam", "lr": 0.01}),
        tiny_spec(model={"hidden_layers": [8, 4], "dropout": 0.5}, optimizer={"name": "adam", "lr": 0.01}),
    ]
    ids = [client.post("/v1/jobs", json=spec).json()["id"] for spec in specs]
    for job_id, loss in zip(ids[:2], (0.4, 0.2), strict=True):
        finish_as_a_worker(database_url, job_id, loss, 0.01)

    chart = client.get("/v1/charts/parallel_coordinates", params={"job_ids": ids})
    assert chart.status_code == 200 and chart.headers["content-type"] == "application/vnd.vegalite+json"
    lines = chart.json()["layer"][0]
    # Only what differs (the shared lr is no axis); the third job has no best val_loss yet, so no line.
    assert lines["encoding"]["x"]["sort"] == ["model.dropout", "val_loss"]
    position = {(row["trial"], row["axis"]): row["position"] for row in lines["data"]["values"]}
    assert position == {
        (ids[0][:8], "model.dropout"): 0.0, (ids[0][:8], "val_loss"): 1.0,
        (ids[1][:8], "model.dropout"): 1.0, (ids[1][:8], "val_loss"): 0.0,
    }  # fmt: skip
    assert client.get("/v1/charts/parallel_coordinates", params={"job_ids": ids, "format": "svg"}).status_code == 200
    bob = bearer(create_key(database_url, "bob"))
    assert client.get("/v1/charts/parallel_coordinates", params={"job_ids": ids}, headers=bob).status_code == 404
    assert client.get("/v1/charts/parallel_coordinates", params={"job_ids": ids[:1]}).status_code == 422
