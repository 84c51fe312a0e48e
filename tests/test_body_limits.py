"""Request bodies are capped on every route: a 150 MiB body to `POST /v1/jobs` is a 413 problem, refused before
it is read when its length is declared and cut off at the cap when it is chunked, so the API's memory does not
grow with it. Data set uploads keep their larger cap (tests/datasets/test_router.py)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.fixtures import Process, bearer, free_port, settings_env, wait_until_healthy

HUGE = 150 * 2**20
CHUNK = 2**20


@pytest.fixture
def api_process(settings: Settings, tmp_path: Path) -> Iterator[tuple[Process, str]]:
    """`steadyfit api` as a real process (the default body cap of 1 MiB), and its address."""
    port = free_port()
    process = Process(["api", "--port", str(port)], settings_env(settings), tmp_path / "api.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        yield process, f"127.0.0.1:{port}"
    finally:
        process.stop()


def peak_rss_mib(process: Process) -> float:
    """The highest resident memory the process has had so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{process.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def huge_json_body() -> Iterator[bytes]:
    """150 MiB of one JSON object, made a chunk at a time so the test never holds it whole."""
    yield b'{"name": "'
    for _ in range(HUGE // CHUNK):
        yield b"a" * CHUNK
    yield b'"}'


def assert_413_problem(status: int, content_type: str, body: bytes) -> None:
    assert status == 413, body[:500]
    assert content_type == "application/problem+json"
    assert json.loads(body)["detail"] == f"the request body is over the limit of {2**20} bytes"


def test_a_declared_150_mib_body_is_refused_before_it_is_sent(api_process: tuple[Process, str], api_key: str) -> None:
    _, address = api_process
    connection = http.client.HTTPConnection(address, timeout=30)
    connection.putrequest("POST", "/v1/jobs")
    for name, value in {**bearer(api_key), "Content-Type": "application/json", "Content-Length": str(HUGE)}.items():
        connection.putheader(name, value)
    connection.endheaders()  # not a byte of the body: the answer must come without it
    response = connection.getresponse()

    assert_413_problem(response.status, response.getheader("Content-Type", ""), response.read())
    connection.close()


def test_a_chunked_150_mib_body_is_cut_off_at_the_cap(api_process: tuple[Process, str], api_key: str) -> None:
    process, address = api_process
    before = peak_rss_mib(process)
    with httpx.Client(base_url=f"http://{address}", timeout=60, headers=bearer(api_key)) as http:
        response = http.post("/v1/jobs", content=huge_json_body(), headers={"Content-Type": "application/json"})

    assert "content-length" not in response.request.headers  # sent chunked, its length unknown
    assert_413_problem(response.status_code, response.headers["content-type"], response.content)
    assert peak_rss_mib(process) - before < 50  # parsed whole, the body would add 150 MiB and more
    assert http_ok_after(address, api_key)


def http_ok_after(address: str, api_key: str) -> bool:
    """The server still answers normally after refusing the body."""
    return httpx.get(f"http://{address}/v1/jobs", headers=bearer(api_key), timeout=10).status_code == 200


def test_a_body_within_the_cap_is_accepted_and_uploads_keep_their_own_cap(
    client_with: Callable[..., TestClient],
) -> None:
    with client_with(max_body_bytes=200, max_upload_bytes=10_000) as client:
        small = client.post("/v1/jobs", json={"dataset": {"name": "iris"}, "training": {"epochs": 1}})
        large = client.post("/v1/jobs", json={"name": "x" * 300, "dataset": {"name": "iris"}})
        upload = client.post(
            "/v1/datasets",
            files={"file": ("t.csv", b"a,b\n" + b"1,2\n" * 100, "text/csv")},
            data={"target": "b", "task": "regression"},
        )
    assert small.status_code == 202, small.text
    assert large.status_code == 413 and large.json()["detail"] == "the request body is over the limit of 200 bytes"
    assert upload.status_code == 201, upload.text  # 400 bytes: over the JSON cap, within the upload cap
