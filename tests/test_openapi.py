"""The OpenAPI schema documents everything: each operation has a summary and a description, each parameter
and each schema property a description, and each operation that takes a body an example of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from core.settings import Settings
from service.app import create_app
from tests.fixtures import bearer, create_key, finish_as_a_worker, tiny_spec

# Where a schema holds other schemas: lists of them, and single ones.
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SUBSCHEMAS = ("items", "additionalProperties", "not")


def gaps(openapi: dict[str, Any]) -> list[str]:
    """Every undocumented thing in `openapi`, reached from its operations through `$ref`s and subschemas."""
    return list(_operation_gaps(openapi, set()))


def _operation_gaps(openapi: dict[str, Any], seen: set[str]) -> Iterator[str]:
    components = openapi.get("components", {}).get("schemas", {})
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            if not (operation.get("summary") and operation.get("description")):
                yield f"{where}: no summary or no description"
            for parameter in operation.get("parameters", []):
                if not parameter.get("description"):
                    yield f"{where}: parameter `{parameter['name']}` has no description"
                yield from _schema_gaps(parameter.get("schema", {}), f"{where} {parameter['name']}", components, seen)
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                if not (content.get("example") or content.get("examples")):
                    yield f"{where}: the {media_type} body has no example"
                yield from _schema_gaps(content.get("schema", {}), f"{where} body", components, seen)
            for code, response in operation.get("responses", {}).items():
                for content in response.get("content", {}).values():
                    yield from _schema_gaps(content.get("schema", {}), f"{where} {code}", components, seen)


def _schema_gaps(schema: dict[str, Any], where: str, components: dict[str, Any], seen: set[str]) -> Iterator[str]:
    """Properties without a description in `schema` and every schema inside it (each component once)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            yield from _schema_gaps(components[name], name, components, seen)
    for key in SUBSCHEMA_LISTS:
        for member in schema.get(key, []):
            yield from _schema_gaps(member, where, components, seen)
    for key in SUBSCHEMAS:
        if isinstance(schema.get(key), dict):
            yield from _schema_gaps(schema[key], where, components, seen)
    for name, prop in schema.get("properties", {}).items():
        if not prop.get("description"):
            yield f"{where}.{name}: no description"
        yield from _schema_gaps(prop, f"{where}.{name}", components, seen)


def test_the_api_schema_has_no_undocumented_operation_parameter_property_or_body() -> None:
    assert gaps(create_app(Settings()).openapi()) == []


def body_examples(openapi: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(method, path, media type, value) of every request body example."""
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
                values = [example["value"] for example in content.get("examples", {}).values()]
                if "example" in content:
                    values.append(content["example"])
                yield from ((method, path, media_type, value) for value in values)


def test_every_body_example_is_accepted(settings: Settings, database_url: str) -> None:
    """Sent as they stand (as an admin, who may use every route), the examples create what they describe. The
    prediction and model examples need a trained model's files: tests/predictions/test_end_to_end.py and
    tests/models/ send them to one."""
    needs_weights = ("/predict", "/model")
    examples = [e for e in body_examples(create_app(settings).openapi()) if not any(p in e[1] for p in needs_weights)]
    assert {path for _, path, _, _ in examples} == {
        "/v1/jobs",
        "/v1/sweeps",
        "/v1/paths",
        "/v1/datasets",
        "/v1/keys",
        "/v1/jobs/{job_id}/analyses",
        "/v1/jobs/{job_id}/rerun",
        "/v1/webhooks",
    }
    admin = bearer(create_key(database_url, "examples", admin=True))
    with TestClient(create_app(settings), headers=admin) as client:
        # A route of a job's takes the example of a job that has trained.
        job_id = client.post("/v1/jobs", json=tiny_spec()).json()["id"]
        finish_as_a_worker(database_url, job_id, val_loss=0.5, se=0.01)
        for method, template, media_type, value in examples:
            path = template.replace("{job_id}", job_id)
            if media_type == "multipart/form-data":
                fields = {name: text for name, text in value.items() if name != "file"}
                response = client.request(method, path, files={"file": ("example.csv", value["file"])}, data=fields)
            else:
                response = client.request(method, path, json=value)
            assert response.status_code in (201, 202), (path, response.text)


def test_the_walk_finds_each_kind_of_gap() -> None:
    """The check above can fail: a schema with one gap of each kind, some behind `$ref`s and `anyOf`."""
    openapi = {
        "paths": {
            "/things/{id}": {
                "post": {
                    "summary": "Make a thing",
                    "parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}],
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/c/Thing"}}}},
                    "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/c/Thing"}}}}},
                }
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "properties": {
                        "part": {"anyOf": [{"$ref": "#/c/Part"}, {"type": "null"}], "description": "A part."},
                        "size": {"type": "integer"},
                    }
                },
                "Part": {"properties": {"items": {"type": "array", "items": {"$ref": "#/c/Leaf"}}}},
                "Leaf": {"properties": {"colour": {"type": "string"}}},
            }
        },
    }

    assert gaps(openapi) == [
        "POST /things/{id}: no summary or no description",
        "POST /things/{id}: parameter `id` has no description",
        "POST /things/{id}: the application/json body has no example",
        "Part.items: no description",
        "Leaf.colour: no description",
        "Thing.size: no description",
    ]
