"""Problem details for what the routing layer refuses, and the OpenAPI schema documenting them."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_wrong_method_is_a_405_problem_listing_every_allowed_method(client: TestClient) -> None:
    response = client.request("OPTIONS", "/v1/jobs")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


def test_every_error_response_is_documented_as_a_problem(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                if code[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (method, path, code)
                    assert response["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
            assert operation.get("operationId") and operation.get("summary"), (method, path)
