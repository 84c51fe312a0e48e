"""Problem details for what the routing layer refuses, and the OpenAPI schema documenting them."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.fixtures import tiny_spec


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


def field_errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def test_an_unknown_field_names_the_closest_allowed_one(client: TestClient) -> None:
    spec = tiny_spec(model={"hiden_layers": [8]}, trainig={"epochs": 3})
    errors = field_errors(client.post("/v1/jobs", json=spec))

    assert errors == {
        "model.hiden_layers": "Extra inputs are not permitted; did you mean `hidden_layers`?",
        "trainig": "Extra inputs are not permitted; did you mean `training`?",
    }


def test_an_unknown_field_is_matched_where_it_was_sent(client: TestClient) -> None:
    """In a list's item, in a dict's value and in a nested spec: the names allowed there, not elsewhere."""
    sweep = {
        "base": tiny_spec(model={"type": "cnn", "conv_layers": [{"filtres": 8, "kernel_size": 3}]}),
        "parameters": {"model.dropout": {"valuse": [0.0, 0.5]}},
        "objective": {"metric": "val_loss", "mode": "min", "nmae": 1},
    }
    errors = field_errors(client.post("/v1/sweeps", json=sweep))

    assert errors["base.model.conv_layers.0.filtres"].endswith("did you mean `filters`?")
    assert errors["parameters.model.dropout.valuse"].endswith("did you mean `values`?")
    assert errors["objective.nmae"] == "Extra inputs are not permitted"  # nothing there is close to it


def test_malformed_json_is_located_by_line_and_column(client: TestClient) -> None:
    body = '{\n  "dataset": {"name": "iris"},\n  "model": {"hidden_layers": [8]},,\n}'
    response = client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})

    assert field_errors(response) == {  # the second comma: 2 spaces, then 32 characters, then it
        "body": "invalid JSON at line 3, column 35: Expecting property name enclosed in double quotes"
    }


@pytest.mark.parametrize(("content_type", "said"), [(None, "this request has none"), ("text/plain", "`text/plain`")])
def test_a_body_not_sent_as_json_is_told_the_content_type_to_use(
    client: TestClient, content_type: str | None, said: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/jobs", content=json.dumps(tiny_spec()), headers=headers)

    message = field_errors(response)["body"]
    assert "`Content-Type: application/json`" in message and said in message
