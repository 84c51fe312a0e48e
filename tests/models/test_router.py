"""The models API through HTTP on real PostgreSQL: uploaded weights are checked against their architecture
(names, shapes, dtypes; a pickle is refused unread), are their owner's alone, and start jobs."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from fastapi.testclient import TestClient
from safetensors.torch import save

from core.settings import Settings
from core.spec.job import ModelSpec
from tests.fixtures import bearer, create_key, tiny_spec
from workers.training.model import build_model

MLP = {"hidden_layers": [8], "batch_norm": True}
CNN = {"type": "cnn", "conv_layers": [{"filters": 2, "kernel_size": 3, "residual": True}], "hidden_layers": [4]}


def weights(model: dict[str, Any], input_shape: tuple[int, ...], outputs: int) -> dict[str, torch.Tensor]:
    return dict(build_model(ModelSpec.model_validate(model), input_shape, outputs).state_dict())


def upload(client: TestClient, data: bytes, model: dict[str, Any], **form: str) -> Any:
    fields = {"model": json.dumps(model), **form}
    return client.post("/v1/models", files={"file": ("w.safetensors", data)}, data=fields)


def nothing_stored(settings: Settings) -> bool:
    root = settings.data_dir
    return not [p for p in root.rglob("*") if p.is_file() and ("models" in p.parts or "uploads" in p.parts)]


def test_weights_that_fit_their_architecture_become_a_model_that_starts_a_job(client: TestClient) -> None:
    response = upload(client, save(weights(MLP, (4,), 3)), MLP, name="iris start")
    assert response.status_code == 201, response.text
    model = response.json()
    assert model["source"] == "upload" and model["input_shape"] == [4] and model["outputs"] == 3
    assert model["parameters"] == 4 * 8 + 8 + 2 * 8 + 8 * 3 + 3 and model["predictable"] is False
    assert client.get(f"/v1/models/{model['id']}").json() == model
    assert [m["id"] for m in client.get("/v1/models").json()["items"]] == [model["id"]]
    job = client.post("/v1/jobs", json=tiny_spec(model=MLP, init_from={"model_id": model["id"]}))
    assert job.status_code == 202, job.text
    both = client.post("/v1/jobs", json=tiny_spec(init_from={"model_id": model["id"], "job_id": job.json()["id"]}))
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "init_from"
    cnn = upload(client, save(weights(CNN, (3, 6, 6), 2)), CNN, input_shape="[3, 6, 6]")
    assert cnn.status_code == 201 and cnn.json()["input_shape"] == [3, 6, 6]
    assert client.post(f"/v1/models/{model['id']}/predict", json={"rows": [[1, 2, 3, 4]]}).status_code == 409
    assert client.delete(f"/v1/models/{model['id']}").status_code == 204
    assert client.get(f"/v1/models/{model['id']}").status_code == 404


def test_weights_that_do_not_fit_are_a_422_that_lists_the_differences(client: TestClient) -> None:
    other = weights({"hidden_layers": [6]}, (4,), 3)
    response = upload(client, save(other), MLP)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "missing ['hidden0.norm.bias', 'hidden0.norm.num_batches_tracked'" in detail
    assert "`output.weight` is [3, 6], the model needs [3, 8]" in detail
    ints = {name: t.to(torch.int32) if name == "output.weight" else t for name, t in weights(MLP, (4,), 3).items()}
    assert "`output.weight` is I32, a parameter must be a float" in upload(client, save(ints), MLP).json()["detail"]
    no_size = upload(client, save(weights(CNN, (3, 6, 6), 2)), CNN)
    assert no_size.status_code == 422 and no_size.json()["errors"][0]["field"] == "input_shape"
    wrong_size = upload(client, save(weights(CNN, (3, 6, 6), 2)), CNN, input_shape="[3, 7, 7]")
    assert "`hidden0.linear.weight` is [4, 72], the model needs [4, 98]" in wrong_size.json()["detail"]
    bad_block = upload(client, save(other), {"hidden_layers": [8], "dropout": 2})
    assert bad_block.status_code == 422 and bad_block.json()["errors"][0]["field"] == "model.dropout"


def test_a_pickle_named_safetensors_is_refused_unread_and_nothing_is_left(
    client_with: Callable[..., TestClient], settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (marker.write_text, ("ran",))

    with client_with() as client:
        for data in (
            pickle.dumps(Exploit()),
            pickle.dumps(weights(MLP, (4,), 3)),
            b"",
            save(weights(MLP, (4,), 3))[:-4],
        ):
            response = upload(client, data, MLP)
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["field"] == "file"
            assert "not a safetensors file" in response.json()["detail"]
        assert client.get("/v1/models").json()["items"] == []
    assert not marker.exists()
    assert nothing_stored(settings)


def test_a_model_is_its_owners_alone(client: TestClient, database_url: str) -> None:
    model = upload(client, save(weights(MLP, (4,), 3)), MLP).json()
    bob = bearer(create_key(database_url, "bob"))
    assert client.get(f"/v1/models/{model['id']}", headers=bob).status_code == 404
    assert client.get("/v1/models", headers=bob).json()["items"] == []
    started = client.post("/v1/jobs", json=tiny_spec(model=MLP, init_from={"model_id": model["id"]}), headers=bob)
    assert started.status_code == 422 and started.json()["errors"][0]["field"] == "init_from.model_id"
    assert client.delete(f"/v1/models/{model['id']}", headers=bob).status_code == 404
