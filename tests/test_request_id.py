"""`X-Request-ID` on every response, in every problem body, and in the API's log lines."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app
from service.request_id import RequestIdFilter
from tests.fixtures import tiny_spec


def test_every_response_carries_a_generated_request_id(client: TestClient) -> None:
    ids = {client.get(path).headers["x-request-id"] for path in ("/healthz", "/v1/jobs", "/openapi.json")}
    assert len(ids) == 3
    assert all(len(i) == 32 for i in ids)


def test_a_sane_request_id_is_kept_and_an_unsafe_one_replaced(client: TestClient) -> None:
    sent = str(uuid.uuid4())
    assert client.get("/v1/jobs", headers={"X-Request-ID": sent}).headers["x-request-id"] == sent
    for unsafe in ("a b", "x" * 129, "<script>", ""):
        answered = client.get("/v1/jobs", headers={"X-Request-ID": unsafe}).headers["x-request-id"]
        assert answered != unsafe
        assert len(answered) == 32


def test_problem_bodies_name_the_request_id(client: TestClient) -> None:
    not_found = client.get("/v1/jobs/nope", headers={"X-Request-ID": "trace-404"})
    invalid = client.post("/v1/jobs", json=tiny_spec(surprise=1))
    assert not_found.json()["request_id"] == not_found.headers["x-request-id"] == "trace-404"
    assert invalid.json()["request_id"] == invalid.headers["x-request-id"]


def test_a_server_error_has_the_request_id_in_its_body_header_and_log_line(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        logging.getLogger("service.test").warning("about to fail")
        raise RuntimeError("secret internals")

    caplog.handler.addFilter(RequestIdFilter())
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "trace-500"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-500"
    assert response.json()["request_id"] == "trace-500"
    assert "secret" not in response.text
    logged = [r for r in caplog.records if r.name in ("service.test", "service.errors")]
    assert [r.request_id for r in logged] == ["trace-500", "trace-500"]  # type: ignore[attr-defined]
