"""Artifact stores: the local directory and an S3 API server on loopback (moto's server, not a mock)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from core.artifacts import CHUNK_BYTES, ArtifactStore, LocalArtifactStore, S3ArtifactStore, artifact_store
from core.settings import Settings
from tests.fixtures import DIGITS_SPEC, Process, free_port, settings_env, tiny_spec, wait_for, wait_for_job

BIG = os.urandom(2 * CHUNK_BYTES + 7)  # three chunks


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3 API on a loopback port with one bucket; yields its endpoint URL."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="steadyfit")
    yield endpoint
    server.stop()


def round_trip(store: ArtifactStore) -> None:
    store.put("jobs/a/weights.safetensors", b"first")
    store.put("jobs/a/weights.safetensors", b"second")
    store.put("jobs/a/checkpoint.safetensors", b"x" * 10)
    store.put("jobs/b/weights.safetensors", b"other job")

    assert store.get("jobs/a/weights.safetensors") == b"second"
    assert store.get("jobs/a/missing") is None
    assert store.list("jobs/a/") == [("jobs/a/checkpoint.safetensors", 10), ("jobs/a/weights.safetensors", 6)]


def test_the_local_store_round_trips_and_refuses_keys_that_escape_it(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    round_trip(store)
    with pytest.raises(ValueError, match="escapes"):
        store.get("../outside")


def test_the_s3_store_round_trips_under_its_prefix(s3: str) -> None:
    settings = Settings(artifact_url="s3://steadyfit/deploy-1", s3_endpoint_url=s3)
    store = artifact_store(settings)
    assert isinstance(store, S3ArtifactStore)
    round_trip(store)
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket="steadyfit")["Contents"]]
    assert all(key.startswith("deploy-1/jobs/") for key in keys)


def read_in_chunks(store: ArtifactStore) -> None:
    store.put("jobs/a/weights.safetensors", BIG)

    opened = store.open("jobs/a/weights.safetensors")
    assert opened is not None and opened.size == len(BIG)
    assert not isinstance(opened.chunks, bytes | bytearray)
    chunks = list(opened.chunks)
    assert [len(chunk) for chunk in chunks] == [CHUNK_BYTES, CHUNK_BYTES, 7]
    assert b"".join(chunks) == BIG
    assert store.open("jobs/a/missing") is None


def test_the_local_store_opens_a_file_to_read_in_chunks_as_it_was_when_opened(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    read_in_chunks(store)
    opened = store.open("jobs/a/weights.safetensors")
    assert opened is not None
    store.put("jobs/a/weights.safetensors", b"replaced while a download runs")
    assert b"".join(opened.chunks) == BIG  # the length sent stays true


def test_the_s3_store_opens_an_object_to_read_in_chunks(s3: str) -> None:
    read_in_chunks(artifact_store(Settings(artifact_url="s3://steadyfit/deploy-1", s3_endpoint_url=s3)))


def download(client: TestClient, store: ArtifactStore) -> None:
    job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
    store.put(f"jobs/{job_id}/weights.safetensors", BIG)

    response = client.get(f"/v1/jobs/{job_id}/artifacts/weights.safetensors")

    assert response.status_code == 200
    assert response.content == BIG
    assert response.headers["content-length"] == str(len(BIG))
    assert response.headers["content-disposition"] == f'attachment; filename="{job_id}-weights.safetensors"'
    assert client.get(f"/v1/jobs/{job_id}/artifacts/checkpoint.safetensors").status_code == 404


def test_an_artifact_downloads_byte_exact_from_disk(client: TestClient, settings: Settings) -> None:
    download(client, artifact_store(settings))


def test_an_artifact_downloads_byte_exact_from_s3(s3: str, client_with: Callable[..., TestClient]) -> None:
    store = {"artifact_url": "s3://steadyfit/downloads", "s3_endpoint_url": s3}
    with client_with(**store) as client:
        download(client, client.app.state.artifacts)  # type: ignore[attr-defined]


def test_a_bad_artifact_url_is_refused() -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        artifact_store(Settings(artifact_url="ftp://somewhere"))


def test_a_job_resumes_on_another_machine_from_its_checkpoint_in_s3(
    s3: str, settings: Settings, api_server: httpx.Client, tmp_path: Path
) -> None:
    store = {"artifact_url": "s3://steadyfit/jobs-store", "s3_endpoint_url": s3}
    shared = settings.model_copy(update={**store, "lease_seconds": 2.0, "reconcile_seconds": 0.5})
    # Separate data directories: the two workers share nothing but S3, PostgreSQL and Redis.
    machines = [settings_env(shared.model_copy(update={"data_dir": tmp_path / name})) for name in ("a", "b")]
    first = Process(["worker", "--concurrency", "1"], machines[0], tmp_path / "first.log")
    second: Process | None = None
    try:
        job_id = api_server.post("/v1/jobs", json=DIGITS_SPEC).json()["id"]
        wait_for_job(api_server, job_id, epochs=3)
        first.stop(signal.SIGKILL)
        second = Process(["worker", "--concurrency", "1"], machines[1], tmp_path / "second.log")
        job = wait_for_job(api_server, job_id)
        pruning = f"/v1/jobs/{job_id}/pruning"  # runs right after the job ends, storing its pruned weights
        wait_for(lambda: api_server.get(pruning).json().get("status") in ("succeeded", "failed"), 60, "pruning")
    finally:
        first.end()
        if second is not None:
            second.end()

    assert job["status"] == "succeeded" and job["attempts"] == 2
    assert second is not None and f"job {job_id} resumes after epoch" in second.log()
    objects = boto3.client("s3", endpoint_url=s3).list_objects_v2(
        Bucket="steadyfit", Prefix=f"jobs-store/jobs/{job_id}/"
    )
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in objects["Contents"]) == [
        "checkpoint.safetensors",
        "model.onnx",
        "weights-pruned.safetensors",
        "weights.safetensors",
    ]
