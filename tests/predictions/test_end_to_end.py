"""Predictions through a real `steadyfit api`, a worker and PostgreSQL: a job's answers agree with its ONNX
model run locally, the API process has onnxruntime and not torch in its memory map, a table's records and
files are encoded as in training, and bad input is a 4xx that names it."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_iris

from core.settings import Settings
from service.app import create_app
from steadyfit.client import Client
from tests.fixtures import (
    Process,
    bearer,
    create_key,
    finished_analysis,
    free_port,
    settings_env,
    tiny_spec,
    wait_for,
    wait_for_job,
    wait_until_healthy,
)
from tests.test_cli import against, steadyfit

COLOURS = ["red", "blue"]


def example(path: str, name: str | None = None) -> dict[str, Any]:
    """A body example of the OpenAPI schema, as the docs show it."""
    content = create_app(Settings()).openapi()["paths"][path]["post"]["requestBody"]["content"]
    if name is None:
        return dict(content["multipart/form-data"]["example"])
    return dict(content["application/json"]["examples"][name]["value"])


@pytest.fixture
def api(settings: Settings, tmp_path: Path, api_key: str) -> Iterator[tuple[httpx.Client, Process]]:
    port = free_port()
    process = Process(["api", "--port", str(port)], settings_env(settings), tmp_path / "api.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=bearer(api_key)) as http:
            yield http, process
    finally:
        process.stop()


def exported(http: httpx.Client, spec: dict[str, Any]) -> str:
    job = wait_for_job(http, http.post("/v1/jobs", json=spec).json()["id"])
    assert job["status"] == "succeeded", job
    export = finished_analysis(http, job["id"], "onnx")
    assert export["status"] == "succeeded", export
    assert export["result"]["largest_difference"] <= 1e-5
    return str(job["id"])


def test_predictions_agree_with_the_downloaded_onnx_model_and_the_api_never_loads_torch(
    api: tuple[httpx.Client, Process], worker: Process, database_url: str, tmp_path: Path
) -> None:
    http, process = api
    job_id = exported(http, tiny_spec(training={"epochs": 30, "batch_size": 16, "seed": 1}))
    iris = load_iris()
    rows = iris.data[::10].tolist()  # raw measurements: the model standardizes them

    answer = http.post(f"/v1/jobs/{job_id}/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["task"] == "classification" and body["rows"] == 15 and body["classes"] == list(iris.target_names)
    model = http.get(f"/v1/jobs/{job_id}/artifacts/model.onnx").content
    local = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    expected = local.run(None, {"rows": np.array(rows, np.float32)})[0]
    assert np.allclose(body["probabilities"], expected, atol=1e-6)
    assert body["predicted"] == [iris.target_names[k] for k in expected.argmax(axis=1)]
    assert (
        np.mean([iris.target_names[t] == p for t, p in zip(iris.target[::10], body["predicted"], strict=True)]) >= 0.8
    )

    maps = Path(f"/proc/{process.popen.pid}/maps").read_text()
    assert "onnxruntime" in maps and "libtorch" not in maps

    npz = io.BytesIO()
    np.savez(npz, x=np.array(rows))
    from_file = http.post(f"/v1/jobs/{job_id}/predict/file", files={"file": ("rows.npz", npz.getvalue())})
    assert from_file.status_code == 200 and from_file.json()["predicted"] == body["predicted"]

    with Client(str(http.base_url), http.headers["Authorization"].split()[1]) as client:
        assert client.predict(job_id, rows).predicted == body["predicted"]
        module = client.load_model(job_id)  # torch is installed here: the network as a module
        with torch.no_grad():
            assert np.allclose(module(torch.tensor(rows, dtype=torch.float32)).numpy(), expected, atol=1e-5)
    (tmp_path / "rows.npz").write_bytes(npz.getvalue())
    printed = steadyfit(["predict", job_id[:8], str(tmp_path / "rows.npz")], **against(http))
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0] == "row,predicted,p_setosa,p_versicolor,p_virginica" and len(lines) == 16
    assert [line.split(",")[1] for line in lines[1:]] == body["predicted"]

    documented = http.post(f"/v1/jobs/{job_id}/predict", json=example("/v1/jobs/{job_id}/predict", "rows"))
    assert documented.status_code == 200 and documented.json()["predicted"] == ["setosa", "virginica"]
    short = http.post(f"/v1/jobs/{job_id}/predict", json={"rows": [[1, 2, 3]]})
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "rows"
    both = http.post(f"/v1/jobs/{job_id}/predict", json={"rows": rows, "records": [{}]})
    assert both.status_code == 422
    bob = bearer(create_key(database_url, "bob"))
    assert http.post(f"/v1/jobs/{job_id}/predict", json={"rows": rows}, headers=bob).status_code == 404
    queued = http.post("/v1/jobs", json=tiny_spec(training={"epochs": 100000})).json()["id"]
    assert http.post(f"/v1/jobs/{queued}/predict", json={"rows": rows}).status_code == 409
    http.post(f"/v1/jobs/{queued}/cancel")


def test_a_tables_records_and_csv_files_are_encoded_as_in_training(
    api: tuple[httpx.Client, Process], worker: Process
) -> None:
    http, _ = api
    rng = np.random.default_rng(0)
    lines = ["x1,colour,x2,label"]
    for _ in range(120):
        x1, colour, x2 = rng.normal(), COLOURS[int(rng.integers(2))], rng.normal()
        lines.append(f"{x1:.3f},{colour},{x2:.3f},{'yes' if (x1 > 0) == (colour == 'red') else 'no'}")
    upload = http.post(
        "/v1/datasets",
        files={"file": ("table.csv", "\n".join(lines).encode())},
        data={"target": "label", "task": "classification"},
    )
    assert upload.status_code == 201, upload.text
    job_id = exported(
        http,
        {
            "dataset": {"id": upload.json()["id"]},
            "model": {"hidden_layers": [16]},
            "optimizer": {"name": "adam", "lr": 0.02},
            "training": {"epochs": 60, "batch_size": 16, "seed": 0},
        },
    )
    records = [{"x1": 1.5, "colour": "red", "x2": 0.0}, {"x1": 1.5, "colour": "blue", "x2": 0.0}]
    answer = http.post(f"/v1/jobs/{job_id}/predict", json={"records": records})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predicted"] == ["yes", "no"]
    csv = b"x2,colour,x1\n0,red,1.5\n0,blue,1.5\n"  # any column order
    from_file = http.post(f"/v1/jobs/{job_id}/predict/file", files={"file": ("rows.csv", csv)})
    assert from_file.status_code == 200, from_file.text
    assert np.allclose(from_file.json()["probabilities"], answer.json()["probabilities"], atol=1e-6)

    for body in (example("/v1/jobs/{job_id}/predict", "records"), example("/v1/jobs/{job_id}/predict/file")):
        if "file" in body:
            documented = http.post(f"/v1/jobs/{job_id}/predict/file", files={"file": ("rows.csv", body["file"])})
        else:
            documented = http.post(f"/v1/jobs/{job_id}/predict", json=body)
        assert documented.status_code == 200, documented.text
    green = http.post(f"/v1/jobs/{job_id}/predict", json={"records": [{"x1": 1, "colour": "green", "x2": 0}]})
    assert green.status_code == 422 and green.json()["errors"][0]["field"] == "records[0].colour"
    missing = http.post(f"/v1/jobs/{job_id}/predict", json={"records": [{"x1": 1, "colour": "red"}]})
    assert missing.status_code == 422 and "missing columns ['x2']" in missing.json()["detail"]


def shape_images(n: int, seed: int) -> list[tuple[str, bytes]]:
    """`n` PNG images of the built-in `shapes` set (circle, square, triangle), as a user would have them."""
    from core.spec.catalog import CATALOG, Draw

    loaded = CATALOG["shapes"].loader(Draw(rows=n, features=0, classes=3, noise=0.05, seed=seed))
    images = []
    for i, (pixels, label) in enumerate(zip(loaded.x, loaded.y, strict=True)):
        array = (pixels.reshape(3, 32, 32).transpose(1, 2, 0) * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        images.append((f"{loaded.class_names[label]}/{i}.png", buffer.getvalue()))
    return images


def zipped(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_of_images_trains_a_cnn_whose_predictions_for_new_images_match_the_onnx_model(
    api: tuple[httpx.Client, Process], worker: Process
) -> None:
    http, _ = api
    upload = http.post(
        "/v1/datasets",
        files={"file": ("shapes.zip", zipped(shape_images(240, seed=0)))},
        data={"task": "classification", "image_size": "16"},
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["input_shape"] == [3, 16, 16]
    spec = {
        "dataset": {"id": upload.json()["id"]},
        "model": {"type": "cnn", "conv_layers": [{"filters": 8, "kernel_size": 3, "pool": 2}], "hidden_layers": [16]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 15, "batch_size": 32, "seed": 0},
        "augmentation": {"flip": True, "crop_padding": 1},
    }
    job_id = exported(http, spec)
    new = shape_images(6, seed=99)  # images training never saw, sent as files
    answer = http.post(f"/v1/jobs/{job_id}/predict/file", files={"file": ("new.zip", zipped(new))})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["names"] == [name for name, _ in new] and body["classes"] == ["circle", "square", "triangle"]

    local = onnxruntime.InferenceSession(
        http.get(f"/v1/jobs/{job_id}/artifacts/model.onnx").content, providers=["CPUExecutionProvider"]
    )
    pixels = [
        np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((16, 16), Image.Resampling.BILINEAR))
        for _, data in new
    ]
    rows = np.stack([p.transpose(2, 0, 1).reshape(-1) / 255 for p in pixels]).astype(np.float32)
    assert np.allclose(body["probabilities"], local.run(None, {"rows": rows})[0], atol=1e-5)
    one = http.post(f"/v1/jobs/{job_id}/predict/file", files={"file": ("one.png", new[0][1])})
    assert one.status_code == 200 and one.json()["predicted"] == body["predicted"][:1]


def test_a_batch_prediction_is_answered_by_a_worker_and_downloaded_as_csv(
    api: tuple[httpx.Client, Process], worker: Process, database_url: str
) -> None:
    http, _ = api
    job_id = exported(http, tiny_spec(training={"epochs": 20, "batch_size": 16, "seed": 1}))
    rows = np.resize(load_iris().data, (25_000, 4)).astype(np.float32)  # more than a worker's chunk of 10,000
    npz = io.BytesIO()
    np.savez(npz, x=rows)
    submitted = http.post(f"/v1/jobs/{job_id}/predictions", files={"file": ("rows.npz", npz.getvalue())})
    assert submitted.status_code == 202, submitted.text
    batch = submitted.json()
    assert batch["status"] == "queued" and batch["rows"] == 25_000 and batch["file"] is None

    def finished() -> dict[str, Any] | None:
        read: dict[str, Any] = http.get(f"/v1/predictions/{batch['id']}").json()
        return read if read["status"] in ("succeeded", "failed") else None

    done = wait_for(finished, 60, "the batch prediction")
    assert done["status"] == "succeeded" and done["rows_done"] == 25_000, done
    lines = http.get(done["file"]).text.splitlines()
    assert lines[0] == "row,predicted,p_setosa,p_versicolor,p_virginica" and len(lines) == 25_001
    inline = http.post(f"/v1/jobs/{job_id}/predict", json={"rows": rows[:150].tolist()}).json()
    assert [line.split(",")[1] for line in lines[1:151]] == inline["predicted"]
    assert lines[20_001].split(",")[0] == "20000"

    bob = bearer(create_key(database_url, "bob"))
    assert http.get(f"/v1/predictions/{batch['id']}", headers=bob).status_code == 404
    bad = http.post(f"/v1/jobs/{job_id}/predictions", files={"file": ("rows.csv", b"a,b\n1,2\n")})
    assert bad.status_code == 422 and "unexpected columns" in bad.json()["detail"]
