"""What a web page in a browser may not do to a server that runs without keys: reach it under a foreign `Host`
(DNS rebinding), or change anything through a cross-site request (a form that cancels a job or uploads a file).
Same-origin pages (the dashboard, tests/ui/test_dashboard.py) and clients that send no browser headers (curl,
scripts) go on as before."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app
from tests.fixtures import ROOT, Process, bearer, free_port, settings_env, table_csv, tiny_spec, wait_until_healthy

LOCAL = "http://127.0.0.1"
CROSS_SITE_FORM = {
    "Origin": "http://evil.example",
    "Sec-Fetch-Site": "cross-site",
    "Content-Type": "application/x-www-form-urlencoded",
}
SAME_ORIGIN = {"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"}


@pytest.fixture
def keyless(settings: Settings) -> Iterator[TestClient]:
    """The app without keys, called at http://127.0.0.1 (port 80), as a browser on this machine would."""
    with TestClient(create_app(settings.model_copy(update={"auth": "off"})), base_url=LOCAL) as client:
        yield client


@pytest.fixture
def keyless_api(settings: Settings, tmp_path: Path) -> Iterator[int]:
    """`steadyfit api --auth off` on 127.0.0.1 as a real process; yields its port."""
    port = free_port()
    env = {**settings_env(settings), "STEADYFIT_AUTH": "off"}
    process = Process(["api", "--port", str(port)], env, tmp_path / "api.log")
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        yield port
    finally:
        process.stop()


def assert_problem(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]


def test_a_keyless_server_answers_only_its_loopback_names_at_its_port(keyless_api: int) -> None:
    port = keyless_api
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
            assert http.get("/v1/jobs", headers={"Host": host}).status_code == 200, host
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1:{port + 1}", f"127.0.0.1.evil.example:{port}"):
            assert_problem(http.get("/v1/jobs", headers={"Host": host}), 400, f"Host `{host}`")
        assert_problem(http.get("/ui", headers={"Host": f"evil.example:{port}"}), 400, "ALLOWED_HOSTS")


def test_allowed_hosts_replace_the_default_and_apply_with_keys_too(settings: Settings, api_key: str) -> None:
    allowed = settings.model_copy(update={"allowed_hosts": ["api.example", "gpu-box:8000"]})
    with TestClient(create_app(allowed), headers=bearer(api_key)) as client:
        assert client.get("/v1/jobs", headers={"Host": "api.example:443"}).status_code == 200
        assert client.get("/v1/jobs", headers={"Host": "gpu-box:8000"}).status_code == 200
        assert_problem(client.get("/v1/jobs", headers={"Host": "gpu-box:9000"}), 400, "Host")
        assert_problem(client.get("/v1/jobs", headers={"Host": "testserver"}), 400, "Host")
    with TestClient(create_app(settings), headers=bearer(api_key)) as client:  # keys on, no list: any Host
        assert client.get("/v1/jobs", headers={"Host": "anything.example"}).status_code == 200


def test_a_cross_site_form_cannot_cancel_a_job_on_a_keyless_server(keyless: TestClient) -> None:
    job = keyless.post("/v1/jobs", json=tiny_spec())  # no browser headers: curl, a script
    assert job.status_code == 202, job.text
    cancel = f"/v1/jobs/{job.json()['id']}/cancel"

    assert_problem(keyless.post(cancel, headers=CROSS_SITE_FORM), 403, "cross-site")
    old_browser = {"Origin": "http://evil.example", "Content-Type": "text/plain"}  # no Sec-Fetch-Site
    assert_problem(keyless.post(cancel, headers=old_browser), 403, "cross-site")
    assert_problem(keyless.post(cancel, headers={"Origin": "null"}), 403, "cross-site")  # a sandboxed page
    same_site = {"Origin": "http://127.0.0.1:3000", "Sec-Fetch-Site": "same-site"}  # another local server's page
    assert_problem(keyless.post(cancel, headers=same_site), 403, "cross-site")
    assert keyless.get(f"/v1/jobs/{job.json()['id']}").json()["status"] == "queued"

    assert keyless.get(f"/v1/jobs/{job.json()['id']}", headers=CROSS_SITE_FORM).status_code == 200  # reads pass
    assert keyless.post(cancel, headers=SAME_ORIGIN).json()["status"] == "cancelled"  # the dashboard's own


def test_a_cross_site_multipart_upload_is_refused_on_a_keyless_server(keyless: TestClient) -> None:
    files = {"file": ("toy.csv", table_csv(), "text/csv")}
    form = {"target": "label", "task": "classification"}
    cross_site = {key: value for key, value in CROSS_SITE_FORM.items() if key != "Content-Type"}

    assert_problem(keyless.post("/v1/datasets", files=files, data=form, headers=cross_site), 403, "cross-site")
    assert keyless.get("/v1/datasets").json()["items"] == []
    assert keyless.post("/v1/datasets", files=files, data=form, headers=SAME_ORIGIN).status_code == 201


def test_origins_in_cors_origins_may_write_and_keys_make_the_check_moot(settings: Settings, api_key: str) -> None:
    cors = settings.model_copy(update={"auth": "off", "cors_origins": ["http://dashboards.example"]})
    trusted = {"Origin": "http://dashboards.example", "Sec-Fetch-Site": "cross-site"}
    with TestClient(create_app(cors), base_url=LOCAL) as client:
        assert client.post("/v1/jobs", json=tiny_spec(), headers=trusted).status_code == 202
        assert_problem(client.post("/v1/jobs", json=tiny_spec(), headers=CROSS_SITE_FORM), 403, "cross-site")
    # With keys, a cross-site page cannot send one (it is not a cookie): the request stands or falls by its key.
    with TestClient(create_app(settings), headers=bearer(api_key)) as client:
        cross_site = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        assert client.post("/v1/jobs", json=tiny_spec(), headers=cross_site).status_code == 202


def test_a_keyless_server_on_a_public_address_needs_its_allowed_hosts_named(settings: Settings) -> None:
    env = {**settings_env(settings), "STEADYFIT_AUTH": "off"}
    command = [sys.executable, "-m", "steadyfit.cli", "api", "--host", "0.0.0.0", "--port", str(free_port())]
    refused = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert refused.returncode != 0
    assert "STEADYFIT_ALLOWED_HOSTS" in refused.stderr
