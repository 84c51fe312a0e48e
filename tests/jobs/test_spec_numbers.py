"""Spec numbers are finite: NaN and ±Infinity in any float field of a job or sweep are a 422 naming the field,
and an early-stopping divergence threshold on the good side of the stopping threshold is a 422 too."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.spec.job import JobSpec
from tests.fixtures import sweep_body, tiny_spec

# What each object of the spec needs beside the float field set in it.
REQUIRED: dict[str, dict[str, Any]] = {
    "dataset": {"name": "classification"},
    "loss": {"name": "huber"},
    "scheduler": {"name": "cosine"},
    "init_from": {"job_id": "some-job"},
}
NOT_FINITE = ("NaN", "Infinity", "-Infinity")


def float_paths(schema: dict[str, Any], defs: dict[str, Any], path: tuple[str | int, ...] = ()) -> Iterator[tuple]:
    """Every path of the schema where a JSON number that is not an integer is allowed (0 for a list item)."""
    if "$ref" in schema:
        yield from float_paths(defs[schema["$ref"].rsplit("/", 1)[1]], defs, path)
        return
    for option in schema.get("anyOf", []):
        yield from float_paths(option, defs, path)
    if schema.get("type") == "number":
        yield path
    if schema.get("type") == "array" and "items" in schema:
        yield from float_paths(schema["items"], defs, (*path, 0))
    for name, field in schema.get("properties", {}).items():
        yield from float_paths(field, defs, (*path, name))


def with_value(path: tuple, marker: str) -> dict[str, Any]:
    """The tiny spec with the field at `path` set to `marker` (replaced by a bare JSON token later)."""
    spec = copy.deepcopy(tiny_spec())
    node: Any = spec
    for depth, key in enumerate(path[:-1]):
        following = path[depth + 1]
        if isinstance(node, dict) and not isinstance(node.get(key), dict | list):
            node[key] = [] if isinstance(following, int) else dict(REQUIRED.get(str(key), {}))
        node = node[key]
    if isinstance(node, list):
        node.append(marker)
    else:
        node[path[-1]] = marker
    return spec


def as_json(spec: dict[str, Any], token: str) -> str:
    return json.dumps(spec).replace('"@NUMBER@"', token)


def spec_float_paths() -> list[tuple]:
    schema = JobSpec.model_json_schema()
    return sorted(set(float_paths(schema, schema.get("$defs", {}))), key=str)


def test_the_schema_walk_finds_the_float_fields() -> None:
    found = {".".join(map(str, path)) for path in spec_float_paths()}
    assert {"early_stopping.baseline", "optimizer.lr", "model.dropout", "model.dropout.0", "loss.delta"} <= found
    assert len(found) >= 20


@pytest.mark.parametrize("path", spec_float_paths(), ids=lambda path: ".".join(map(str, path)))
def test_nan_and_infinity_in_any_float_field_are_a_422_naming_it(client: TestClient, path: tuple) -> None:
    dotted = ".".join(map(str, path))
    for token in NOT_FINITE:
        body = as_json(with_value(path, "@NUMBER@"), token)
        response = client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (dotted, token, response.text)
        fields = [error["field"] for error in response.json()["errors"]]
        assert any(field == dotted or field.startswith(dotted + ".") for field in fields), (dotted, token, fields)


def test_nan_and_infinity_in_a_sweep_are_a_422(client: TestClient) -> None:
    in_base = sweep_body(base=with_value(("early_stopping", "baseline"), "@NUMBER@"))
    in_values = sweep_body(parameters={"model.dropout": {"values": [0.1, "@NUMBER@"]}})
    in_range = sweep_body(parameters={"optimizer.lr": {"uniform": [0.001, "@NUMBER@"]}})
    for body in (in_base, in_values, in_range):
        for token in NOT_FINITE:
            response = client.post(
                "/v1/sweeps", content=as_json(body, token), headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 422, (body, token, response.text)


@pytest.mark.parametrize(
    ("early_stopping", "refused"),
    [
        ({"mode": "min", "stopping_threshold": 0.1, "divergence_threshold": 0.1}, True),
        ({"mode": "min", "stopping_threshold": 0.1, "divergence_threshold": 0.05}, True),
        ({"mode": "min", "stopping_threshold": 0.1, "divergence_threshold": 10.0}, False),
        ({"mode": "max", "monitor": "val_accuracy", "stopping_threshold": 0.9, "divergence_threshold": 0.95}, True),
        ({"mode": "max", "monitor": "val_accuracy", "stopping_threshold": 0.9, "divergence_threshold": 0.1}, False),
        ({"mode": "auto", "monitor": "val_accuracy", "stopping_threshold": 0.9, "divergence_threshold": 0.9}, True),
        ({"mode": "auto", "monitor": "val_loss", "stopping_threshold": 0.2, "divergence_threshold": 0.1}, True),
        ({"mode": "auto", "monitor": "val_loss", "stopping_threshold": 0.2, "divergence_threshold": 5.0}, False),
        ({"divergence_threshold": 5.0}, False),
    ],
)
def test_a_divergence_threshold_on_the_good_side_of_the_stopping_threshold_is_a_422(
    client: TestClient, early_stopping: dict[str, Any], refused: bool
) -> None:
    response = client.post("/v1/jobs", json=tiny_spec(early_stopping=early_stopping))
    if not refused:
        assert response.status_code == 202, response.text
        return
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "early_stopping.divergence_threshold"
    assert "stopping_threshold" in response.json()["errors"][0]["message"]
