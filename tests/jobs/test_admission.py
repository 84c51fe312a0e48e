"""Every job is admitted as its owner's, through one place (core/jobs/admission.py): direct submissions
and sweep trials alike reach only their owner's data sets and jobs, stay within their owner's limits and
job quota, and within the server's cost bounds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from core.artifacts import artifact_store
from core.db.engine import Database
from core.db.models import Job, Sweep
from core.jobs.cost import widest_layer
from core.settings import Settings
from core.spec.job import JobSpec, ModelSpec, SpecTaskError
from core.sweeps.schedule import schedule
from core.tenants import limits
from service.app import create_app
from tests.fixtures import bearer, create_key, sweep_body, tiny_spec, upload_table
from workers.runner import resolved_spec

DIGITS_CNN = {"type": "cnn", "conv_layers": [{"filters": 512, "kernel_size": 3}] * 16}


@pytest.fixture
def app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def owners(database_url: str) -> dict[str, dict[str, str]]:
    return {"alice": bearer(create_key(database_url, "alice")), "bob": bearer(create_key(database_url, "bob"))}


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    database = Database(settings.resolved_database_url, pooled=False)
    yield database
    database.dispose()


def alices_data_and_job(app: TestClient, alice: dict[str, str], database: Database, settings: Settings) -> Any:
    """Alice's uploaded data set, and a succeeded job of hers with weights: their ids."""
    dataset_id = upload_table(app, alice)
    job_id = app.post("/v1/jobs", json=tiny_spec(), headers=alice).json()["id"]
    with database.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status="succeeded"))
    artifact_store(settings).put(f"jobs/{job_id}/weights.safetensors", b"alice's weights")
    return dataset_id, job_id


def test_no_search_space_reaches_another_owners_data_set_or_weights(
    app: TestClient, owners: Any, database: Database, settings: Settings
) -> None:
    dataset_id, job_id = alices_data_and_job(app, owners["alice"], database, settings)
    own = tiny_spec(dataset={"id": upload_table(app, owners["bob"])})
    spaces = {
        "grid over dataset.id": sweep_body(
            base=own,
            algorithm="grid",
            max_trials=None,
            parameters={"dataset.id": {"values": [own["dataset"]["id"], dataset_id]}},
        ),
        "grid point of two parameters": sweep_body(
            algorithm="grid",
            max_trials=None,
            parameters={
                "dataset": {"values": [{"name": "iris"}, {"id": dataset_id}]},
                "model.dropout": {"values": [0.0, 0.1]},
            },
        ),
        "random over dataset": sweep_body(algorithm="random", parameters={"dataset": {"values": [{"id": dataset_id}]}}),
        "tpe over init_from": sweep_body(parameters={"init_from": {"values": [None, {"job_id": job_id}]}}),
        "random over init_from in a base that has one": sweep_body(
            algorithm="random", parameters={"init_from.job_id": {"values": [job_id]}}
        ),
    }
    for what, body in spaces.items():
        if what.endswith("has one"):
            bobs_job = app.post("/v1/jobs", json=tiny_spec(), headers=owners["bob"]).json()["id"]
            with database.session() as session:
                session.execute(update(Job).where(Job.id == bobs_job).values(status="succeeded"))
            body["base"] = tiny_spec(init_from={"job_id": bobs_job})
        response = app.post("/v1/sweeps", json=body, headers=owners["bob"])
        assert response.status_code == 422, (what, response.text)
        assert dataset_id in response.text or job_id in response.text, (what, response.text)
    with database.session() as session:
        bobs = session.scalars(select(Job).where(Job.owner == "bob", Job.sweep_id.is_not(None))).all()
    assert bobs == []


def test_a_trial_is_admitted_as_its_sweeps_owner_even_when_its_space_was_not_checked(
    app: TestClient, owners: Any, database: Database, settings: Settings
) -> None:
    """The scheduler admits each trial as the sweep's owner: a sweep row whose space names another owner's
    data set (as one stored before this check existed would) makes a failed trial, never a queued one."""
    dataset_id, job_id = alices_data_and_job(app, owners["alice"], database, settings)
    body = sweep_body(
        algorithm="grid",
        max_trials=None,
        max_parallel=2,
        pruner={"name": "none"},
        parameters={"dataset": {"values": [{"id": dataset_id}]}, "init_from": {"values": [{"job_id": job_id}]}},
    )
    body["max_trials"] = 1
    sweep_id = str(uuid.uuid4())
    with database.session() as session:
        session.add(Sweep(id=sweep_id, owner="bob", status="running", task="classification", spec=body))
    with database.session() as session:
        created = schedule(session, app.app.state.queue, settings, sweep_id)  # type: ignore[attr-defined]
        assert [(trial.owner, trial.status) for trial in created] == [("bob", "failed")]
        assert f"no uploaded data set `{dataset_id}`" in (created[0].error or "")


def set_limits(database: Database, owner: str, **values: int) -> None:
    with database.session() as session:
        limits.set_overrides(session, owner, dict(values))


def queued(database: Database, owner: str) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).where(Job.owner == owner, Job.status == "queued")) or 0)


def test_a_sweep_is_refused_when_a_point_of_its_space_is_past_its_owners_limits(
    app: TestClient, owners: Any, database: Database
) -> None:
    set_limits(database, "bob", max_epochs=5, max_model_parameters=1000, max_queued_jobs=1)
    bob = owners["bob"]
    base = tiny_spec(training={"epochs": 5, "batch_size": 16, "seed": 1})
    refused = {
        "parameters.training.epochs": sweep_body(base=base, parameters={"training.epochs": {"values": [5, 40]}}),
        "parameters.model.hidden_layers": sweep_body(
            base=base, parameters={"model.hidden_layers": {"values": [[8], [64, 64]]}}
        ),
        # Each width alone fits; [30, 30] has 4·30 + 30 + 30·30 + 30 + 30·3 + 3 = 1173 parameters.
        "parameters": sweep_body(
            base={**base, "model": {"hidden_layers": [4, 4]}},
            algorithm="grid",
            max_trials=None,
            parameters={"model.hidden_layers.0": {"values": [4, 30]}, "model.hidden_layers.1": {"values": [4, 30]}},
        ),
    }
    range_over = sweep_body(base=base, algorithm="random", parameters={"training.epochs": {"int_uniform": [1, 40]}})
    refused["parameters.training.epochs "] = range_over
    for field, body in refused.items():
        response = app.post("/v1/sweeps", json=body, headers=bob)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["errors"][0]["field"] == field.strip(), response.text
        assert "`max_epochs` of 5" in response.text or "`max_model_parameters` of 1000" in response.text
    assert "1173 parameters" in app.post("/v1/sweeps", json=refused["parameters"], headers=bob).text

    # Within the limits, a sweep of 6 trials, 4 at a time, for an owner who may queue 1 job.
    fits = sweep_body(
        base=base,
        algorithm="random",
        max_trials=6,
        max_parallel=4,
        pruner={"name": "none"},
        parameters={"training.epochs": {"int_uniform": [1, 5]}, "model.hidden_layers": {"values": [[4], [8]]}},
    )
    response = app.post("/v1/sweeps", json=fits, headers=bob)
    assert response.status_code == 202, response.text
    sweep_id = response.json()["id"]
    assert queued(database, "bob") == 1
    for _ in range(6):  # each trial ends; the scheduler then queues one more, never past the quota
        with database.session() as session:
            session.execute(
                update(Job).where(Job.sweep_id == sweep_id, Job.status == "queued").values(status="succeeded")
            )
        with database.session() as session:
            schedule(session, app.app.state.queue, app.app.state.settings, sweep_id)  # type: ignore[attr-defined]
        assert queued(database, "bob") <= 1
    with database.session() as session:
        trials = session.scalars(select(Job).where(Job.sweep_id == sweep_id)).all()
    assert len(trials) == 6 and {trial.status for trial in trials} == {"succeeded"}
    assert all(
        trial.spec["training"]["epochs"] <= 5 and trial.spec["model"]["hidden_layers"] in ([4], [8]) for trial in trials
    )


def test_specs_past_a_cost_bound_are_a_422_naming_it(app: TestClient, owners: Any) -> None:
    bob = owners["bob"]
    cases: list[tuple[dict[str, Any], str, str]] = [
        # 1,000,000 rows of 10,000 float64 features: 80,000,000,000 bytes.
        (
            tiny_spec(dataset={"name": "classification", "n_samples": 1_000_000, "n_features": 10_000}),
            "dataset",
            "80000000000 bytes, over the limit `max_data_bytes`",
        ),
        # 65,536 rows through a layer 65,536 wide, 4 bytes each: 17,179,869,184 bytes.
        (
            tiny_spec(model={"hidden_layers": [65_536]}, training={"epochs": 1, "batch_size": 65_536}),
            "model",
            "17179869184 bytes of activations, over the limit `max_activation_bytes`",
        ),
        # A CNN: 4,096 images by 512 channels of 8 by 8 pixels, 4 bytes each: 536,870,912 bytes (a bound of 2**28).
        (
            tiny_spec(dataset={"name": "digits"}, model=DIGITS_CNN, training={"epochs": 100_000, "batch_size": 4096}),
            "model",
            "536870912 bytes of activations",
        ),
        (
            tiny_spec(training={"epochs": 5, "max_wall_seconds": 86_401.0}),
            "training.max_wall_seconds",
            "86401 seconds is over the limit `max_wall_seconds` of 86400",
        ),
    ]
    with TestClient(create_app(app.app.state.settings.model_copy(update={"max_activation_bytes": 2**28}))) as client:  # type: ignore[attr-defined]
        for spec, field, message in cases:
            response = client.post("/v1/jobs", json=spec, headers=bob)
            assert response.status_code == 422, (field, response.text)
            assert response.json()["errors"][0]["field"] == field
            assert message in response.json()["detail"], response.text
        # The same CNN in batches of 64 fits every bound: it is bounded by max_wall_seconds, not refused.
        cnn = tiny_spec(dataset={"name": "digits"}, model=DIGITS_CNN, training={"epochs": 100_000, "batch_size": 64})
        assert client.post("/v1/jobs", json=cnn, headers=bob).status_code == 202
        me = client.get("/v1/me", headers=bob).json()
    assert me["bounds"] == {"max_data_bytes": 2 * 2**30, "max_activation_bytes": 2**28, "max_wall_seconds": 86_400.0}


def test_a_sweep_range_past_a_cost_bound_is_refused_at_submission(app: TestClient, owners: Any) -> None:
    base = tiny_spec(model={"hidden_layers": [65_536]}, training={"epochs": 2, "batch_size": 16, "seed": 1})
    body = sweep_body(base=base, algorithm="random", parameters={"training.batch_size": {"int_uniform": [16, 65_536]}})
    response = app.post("/v1/sweeps", json=body, headers=owners["bob"])
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "parameters.training.batch_size"
    assert "`max_activation_bytes`" in response.text


def test_the_widest_layer_of_a_cnn_is_its_widest_block_before_pooling() -> None:
    # digits (1, 8, 8): input 64; a block of 4 filters at 8 by 8 = 256, pooled to 4 by 4; 6 filters at
    # 4 by 4 = 96; hidden 16; 10 outputs.
    model = ModelSpec.model_validate(
        {"type": "cnn", "conv_layers": [{"filters": 4, "pool": 2}, {"filters": 6}], "hidden_layers": [16]}
    )
    assert widest_layer(model, (1, 8, 8), 10) == 256
    assert widest_layer(ModelSpec.model_validate({"hidden_layers": [5, 300, 7]}), (4,), 3) == 300


def test_the_worker_trains_an_admitted_spec_as_stored_and_resolves_any_other_row(
    app: TestClient, owners: Any, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = app.post("/v1/jobs", json=tiny_spec(dataset={"name": "diabetes"}), headers=owners["alice"]).json()["id"]
    with database.session() as session:
        row = session.get_one(Job, job_id)
        stored, task = row.spec, row.task
    admitted = JobSpec.model_validate(stored)
    past_admission = {"dataset": {"name": "diabetes"}, "loss": "cross_entropy"}
    unresolved = JobSpec.model_validate(tiny_spec()).model_dump(mode="json")

    with monkeypatch.context() as patch:
        patch.setattr(JobSpec, "with_task", lambda *_: pytest.fail("an admitted spec is resolved again"))
        assert resolved_spec(admitted, stored, task, "regression") is admitted
    with pytest.raises(SpecTaskError, match="cross_entropy"):
        resolved_spec(JobSpec.model_validate(past_admission), past_admission, "regression", "regression")
    with pytest.raises(SpecTaskError, match="mse"):  # the data's task is not the one it was admitted for
        resolved_spec(admitted, stored, task, "classification")
    filled = resolved_spec(JobSpec.model_validate(unresolved), unresolved, "classification", "classification")
    assert filled.loss_spec.name == "cross_entropy"
