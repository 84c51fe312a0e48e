"""schemathesis against the service's own OpenAPI schema, on a real PostgreSQL database and Redis:
no answer is a server error, and every answer matches the schema (status, headers, body)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.python.asgi import shutdown_lifespans

from service.app import create_app
from service.settings import Settings

EXAMPLES = 20  # per operation: enough to reach each validation branch, few enough for CI

# A request the schema allows may still be refused with a 400 or 422 for what JSON Schema cannot say: a
# `cursor` this API did not issue, a file that is not a table, splits that add up to too much, a loss of
# the other task. Every other check (no 5xx, status codes, headers, bodies) is the default and strict.
CONFIG = SchemathesisConfig.from_str(
    """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx"]
"""
)
# The schema is the app's own; building an app opens nothing (that happens in its lifespan).
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi(), config=CONFIG)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    """A fresh app on this test's own database; schemathesis starts its lifespan, this stops it."""
    yield create_app(settings)
    shutdown_lifespans()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_the_api_never_answers_500_and_matches_its_schema(case: schemathesis.Case, app: FastAPI) -> None:
    case.call_and_validate(app=app)
